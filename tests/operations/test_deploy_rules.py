"""deploy/: the alert rules and the Grafana dashboard name only metrics `/metrics` exports."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/bcconnect.json"
# What PromQL calls, groups by and compares with: everything else in an expression that
# is a bare word is a metric name.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "increase", "irate", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "abs", "clamp_min", "clamp_max", "time", "vector", "scalar",
}  # fmt: skip
ISSUE_ALERTS = {
    "BcconnectConnectionNeedsAPerson",
    "BcconnectTokenRefreshFailuresRising",
    "BcconnectClientSecretExpiring",
    "BcconnectCertificateExpiring",
    "BcconnectWebhookBacklog",
    "BcconnectSubscriptionRenewalFailed",
    "BcconnectHigh5xxRate",
}


def alert_rules():
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_expressions():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", ())]


def metric_names(expression):
    """The metrics an expression reads: bare words that are no function, keyword or label."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)  # Label values.
    text = re.sub(r"\{[^}]*\}", "", text)  # Matchers.
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # Grouping labels.
    text = re.sub(r"\[[^\]]*\]", "", text)  # Ranges.
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)
    return {word for word in words if word not in PROMQL_WORDS}


def exported_names(text):
    """Every series name the exposition can hold, counters' _total and histograms' parts."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


@pytest.fixture
def exported(client, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    return exported_names(response.content.decode())


def test_the_alerts_the_issue_asks_for_are_there_with_a_runbook():
    rules = alert_rules()

    assert {rule["alert"] for rule in rules} >= ISSUE_ALERTS
    for rule in rules:
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook"].startswith("docs/operating.md#")
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_every_metric_an_alert_names_is_exported(exported):
    named = {name for rule in alert_rules() for name in metric_names(rule["expr"])}

    assert named
    assert named - exported == set()


def test_every_metric_the_dashboard_names_is_exported(exported):
    named = {name for expression in dashboard_expressions() for name in metric_names(expression)}

    assert len(named) >= 15
    assert named - exported == set()


def test_the_dashboard_shows_every_metric_of_ours(exported):
    """A metric nobody graphs is a metric nobody reads."""
    ours = {name for name in exported if name.startswith("bcconnect_")}
    shown = {name for expression in dashboard_expressions() for name in metric_names(expression)}
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", name) for name in shown}

    assert {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in ours} - families == set()


def test_the_metric_name_reader_finds_names_not_labels_or_functions():
    expression = (
        'histogram_quantile(0.95, sum by (le, system) (rate(x_bucket{answer=~"5xx|a b"}[5m])))'
        " / on (system) y_total > 0.05"
    )

    assert metric_names(expression) == {"x_bucket", "y_total"}


@pytest.mark.skipif(
    not shutil.which("promtool") and not os.environ.get("BCCONNECT_REQUIRE_PROMTOOL"),
    reason="promtool (Debian's prometheus package) is not installed; .ci/run installs it",
)
def test_promtool_accepts_the_rules_and_every_dashboard_expression(tmp_path):
    recorded = tmp_path / "dashboard.yml"
    rules = [
        {"record": f"bcconnect:dashboard:{number}", "expr": expression}
        for number, expression in enumerate(dashboard_expressions())
    ]
    recorded.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    for path in (ALERTS, recorded):
        result = subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
