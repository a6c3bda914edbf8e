"""Fixtures of the operating door: a metrics token and a Prometheus scrape."""

import pytest


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    return settings.METRICS_TOKEN
