"""docs/operating.md: every alert's runbook link lands on a section of the page."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def headings_as_anchors(page):
    """The anchors MkDocs' table of contents makes from the page's headings."""
    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in page.splitlines()
        if line.startswith("#")
    }


def test_every_alert_links_to_a_section_of_the_operating_page():
    anchors = headings_as_anchors((ROOT / "docs/operating.md").read_text())
    groups = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]

    for rule in (rule for group in groups for rule in group["rules"]):
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operating.md"
        assert anchor in anchors, rule["alert"]


def test_the_operating_page_names_every_alert_and_every_metric():
    page = (ROOT / "docs/operating.md").read_text()
    groups = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    source = (ROOT / "authentications/operations/metrics.py").read_text()
    metrics = set(re.findall(r'"(bcconnect_[a-z0-9_]+)"', source))

    assert all(rule["alert"] in page for group in groups for rule in group["rules"])
    assert len(metrics) >= 18
    assert {m for m in metrics if m not in page and f"{m}_total" not in page} == set()
