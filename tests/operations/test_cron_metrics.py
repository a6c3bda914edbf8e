"""cron's counts reach `/metrics`: `refresh_tokens` runs in a process of its own, writes to
the metrics directory it shares with gunicorn, and its file is folded once it has ended."""

import pytest
from django.conf import settings

from authentications.operations import metrics
from tests.helpers import child_env, run_manage_py

pytestmark = pytest.mark.django_db(transaction=True)

REFRESHED = 'bcconnect_token_refreshes_total{outcome="refreshed"}'


def test_a_cron_runs_refreshes_are_counted_after_it_has_ended(
    tokens_planted, fake_microsoft, tmp_path, monkeypatch
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = child_env(
        PUBLIC_BASE_URL=settings.PUBLIC_BASE_URL,
        BC_AUTHORITY_HOST=fake_microsoft.url,
        BC_API_HOST=fake_microsoft.url,
        REQUESTS_CA_BUNDLE=str(fake_microsoft.ca_path),
        EMAIL_URL="dummymail://",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )

    for _ in range(2):
        result = run_manage_py("refresh_tokens", "--all", env=env, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    cron_files = sorted(path.name for path in metrics_dir.glob("counter_*.db"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    text = metrics.exposition().decode()

    assert len(cron_files) == 2  # One per run, each its own process.
    assert f"{REFRESHED} 2.0" in text.splitlines()
    assert sorted(path.name for path in metrics_dir.glob("counter_*.db")) == ["counter_archive.db"]
