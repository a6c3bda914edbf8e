"""What a load balancer and systemd ask: is the process up, can it serve.

Each check answers in milliseconds or says what is down, by name only: an exception's text
may carry a host, a user name or a password from a URL, so it never reaches the answer.
"""

import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django_tasks import task_backends

CACHE_PROBE_SECONDS = 10


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache():
    """Write and read back a key of our own: a cache that only reads is not working."""
    key, value = "bcconnect:health:probe", uuid.uuid4().hex
    cache.set(key, value, CACHE_PROBE_SECONDS)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not keep a value")


def check_task_engine():
    """The backend loads; the database backend's table answers (its migration ran)."""
    backend = task_backends["default"]
    if type(backend).__module__.startswith("django_tasks_db"):
        from django_tasks_db.models import DBTaskResult

        list(DBTaskResult.objects.order_by().values_list("id", flat=True)[:1])


def check_redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def readiness_checks():
    """The checks `/health/ready` runs, by name; Redis only when REDIS_URL is set."""
    checks = {"database": check_database, "cache": check_cache, "tasks": check_task_engine}
    if getattr(settings, "REDIS_URL", ""):
        checks["redis"] = check_redis
    return checks


def run_checks(checks):
    """Run each check; returns (all passed, {name: {"ok": bool, "ms": float}})."""
    results = {}
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception:  # Any failure means "not ready"; the name says which.
            ok = False
        else:
            ok = True
        results[name] = {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return all(result["ok"] for result in results.values()), results
