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


@pytest.fixture
def gunicorn_env(tmp_path):
    """The environment of a production host (DEBUG off, HTTPS behind a proxy) for real
    processes: gunicorn, manage.py."""
    import os
    import secrets

    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "BC_", "PROMETHEUS_"))
        and key != "REQUESTS_CA_BUNDLE"
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
        PUBLIC_BASE_URL="https://bc.example.test",
        SECURE_PROXY_SSL_HEADER="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    return env
