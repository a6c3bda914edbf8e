"""`/health/live` and `/health/ready`: what a load balancer and systemd ask."""

import json

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_live_answers_ok_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response.headers["Cache-Control"]


def test_ready_checks_database_cache_and_task_engine(client):
    response = client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "tasks"}
    assert all(check["ok"] for check in body["checks"].values())


def test_ready_is_503_naming_the_database_when_it_is_down(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise connection.Database.OperationalError("could not connect to postgres:hunter2@db")

    monkeypatch.setattr(connection, "cursor", refuse)

    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert "hunter2" not in response.content.decode()


def test_ready_is_503_when_the_cache_keeps_nothing(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["ok"] is False
    assert response.json()["checks"]["database"]["ok"] is True


def test_ready_is_503_when_the_task_table_is_missing(client, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    monkeypatch.setattr(DBTaskResult._meta, "db_table", "no_such_table")

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["tasks"]["ok"] is False


def test_ready_pings_redis_when_it_is_configured(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"

    response = client.get("/health/ready")

    assert response.json()["checks"]["redis"]["ok"] is True


def test_ready_is_503_when_redis_does_not_answer(client, settings):
    settings.REDIS_URL = "redis://:s3cret-password@127.0.0.1:1/0"

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == {"ok": False, "ms": pytest.approx(0, abs=1000)}
    assert "s3cret" not in response.content.decode()


def test_health_answers_are_json_with_no_secret(client, settings):
    for url in ("/health/live", "/health/ready"):
        response = client.get(url)
        text = json.dumps(response.json())
        assert response.headers["Content-Type"] == "application/json"
        for secret in (settings.SECRET_KEY, *settings.FERNET_KEYS):
            assert secret not in text


def test_health_refuses_writes(client):
    assert client.post("/health/ready").status_code == 405
