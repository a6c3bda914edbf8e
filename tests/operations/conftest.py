"""Fixtures of the operating door: a metrics token and a Prometheus scrape."""

import pytest


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    return settings.METRICS_TOKEN


@pytest.fixture
def scrape(client, metrics_token):
    """Scrape `/metrics` as Prometheus does; returns {(name, labels): value} of the samples."""

    def scrape():
        response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
        assert response.status_code == 200, response
        return samples(response.content.decode())

    return scrape


def samples(text):
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def counted():
    """The value of a counter or histogram sample in this process now (0 when none yet)."""
    from prometheus_client import REGISTRY

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    return value
