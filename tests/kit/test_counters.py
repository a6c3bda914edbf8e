"""The shared counters every rate limit uses: exact across workers, expiry kept."""

import pickle
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache, caches
from django.db import close_old_connections, connection, transaction

from authentications.kit.counters import DatabaseCache, hit

pytestmark = pytest.mark.django_db(transaction=True)


def _expires(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key, expires FROM bcconnect_cache")
        (expires,) = [expires for key, expires in cursor.fetchall() if key.endswith(name)]
    if isinstance(expires, str):  # SQLite hands the column back as text.
        expires = datetime.fromisoformat(expires)
    return expires.replace(tzinfo=UTC)


def test_the_default_cache_is_the_database_one_with_the_atomic_counter():
    assert isinstance(caches["default"], DatabaseCache)


def test_hits_count_up_from_one_in_each_window():
    assert [hit("window-a", 60) for _ in range(3)] == [1, 2, 3]
    assert hit("window-b", 60) == 1


def test_an_increment_keeps_the_windows_expiry():
    """Django's own DatabaseCache.incr rewrote it to the default timeout (300 s)."""
    hit("daily", 86_400)
    hit("daily", 86_400)

    assert _expires("daily") > datetime.now(UTC) + timedelta(hours=23)
    assert cache.get("daily") == 2


def test_an_expired_counter_starts_again():
    cache.set("gone", 41, timeout=-1)

    with pytest.raises(ValueError):
        cache.incr("gone")
    assert hit("gone", 60) == 1


def test_no_hit_is_lost_when_workers_count_at_once():
    """Django's get-then-set incr lost increments here: two threads both wrote N + 1."""
    hit("busy", 600)
    start = threading.Barrier(6)
    errors = []

    def worker():
        try:
            start.wait()
            for _ in range(40):
                hit("busy", 600)
        except Exception as err:  # Reported by the assertion below.
            errors.append(err)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert cache.get("busy") == 1 + 6 * 40


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_counter_never_relaxes_the_commit_of_a_transaction_around_it():
    """Asynchronous commit is for the counter's own transaction only, never an outer one."""
    hit("nested", 60)
    with transaction.atomic(), connection.cursor() as cursor:
        hit("nested", 60)
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert cache.get("nested") == 2


def test_a_counter_stored_in_another_pickle_protocol_still_counts():
    """Rows written before the cache used protocol 0 (and any value that is no plain int)
    take the locked read-and-write path."""
    plain = caches["default"]
    plain.pickle_protocol = pickle.HIGHEST_PROTOCOL
    try:
        plain.add("older", 7, timeout=60)
    finally:
        del plain.pickle_protocol  # Back to the class's protocol 0.

    assert [hit("older", 60) for _ in range(2)] == [8, 9]
    assert cache.get("older") == 9


def test_incr_of_a_value_that_is_no_number_fails_as_djangos_does():
    cache.set("words", "forty-one", timeout=60)

    with pytest.raises(TypeError):
        cache.incr("words")
    assert cache.get("words") == "forty-one"


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_on_postgresql_a_hit_is_one_statement_once_its_window_exists():
    """The hot row is locked for one UPDATE, not across three round trips."""
    from django.test.utils import CaptureQueriesContext

    hit("one-statement", 60)
    with CaptureQueriesContext(connection) as captured:
        assert hit("one-statement", 60) == 2

    assert [q["sql"].split()[0] for q in captured] == ["UPDATE"]


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_on_sqlite_a_hit_holds_the_write_lock_for_one_statement():
    """No BEGIN ... COMMIT around the read and the write: the database's write lock, which
    every process waits for, is taken by the UPDATE alone."""
    from django.test.utils import CaptureQueriesContext

    hit("one-write", 60)
    with CaptureQueriesContext(connection) as captured:
        assert hit("one-write", 60) == 2

    assert [q["sql"].split()[0] for q in captured] == ["SELECT", "UPDATE"]


def test_no_hit_is_lost_when_processes_count_at_once():
    """Two processes (two gunicorn workers) on one counter: their threads take turns in
    their own process only, so here the writes of one land between the other's read and
    write."""
    import subprocess
    import sys
    import time

    from tests.helpers import ROOT, child_env

    hit("shared", 600)
    start = time.time() + 6  # Both children are up by then and start together.
    code = (
        "import time\n"
        "from authentications.kit.counters import hit\n"
        f"time.sleep(max(0, {start} - time.time()))\n"
        "for _ in range(150): hit('shared', 600)\n"
    )
    command = [sys.executable, "manage.py", "shell", "-c", code]
    children = [subprocess.Popen(command, cwd=ROOT, env=child_env()) for _ in range(2)]
    for child in children:
        assert child.wait(120) == 0

    assert cache.get("shared") == 1 + 2 * 150


def _redis_commands(client):
    """Commands the Redis server has run, by name, the INFO asking this left out."""
    stats = client.info("commandstats")
    return {name: stat["calls"] for name, stat in stats.items() if name != "cmdstat_info"}


def test_with_redis_a_hit_is_one_command_once_its_window_exists(redis_cache):
    """Django's RedisCache.incr sent EXISTS, then INCRBY: two round trips."""
    from django.core.cache import caches

    client = caches["default"]._cache.get_client(write=True)
    hit("one-command", 60)
    before = _redis_commands(client)

    assert hit("one-command", 60) == 2

    after = _redis_commands(client)
    sent = {name: after[name] - before.get(name, 0) for name in after}
    # One EVALSHA, which ran EXISTS and INCRBY inside Redis (INFO counts those too).
    assert {name: count for name, count in sent.items() if count} == {
        "cmdstat_evalsha": 1,
        "cmdstat_exists": 1,
        "cmdstat_incrby": 1,
    }
    assert 0 < client.ttl(caches["default"].make_key("one-command")) <= 65


def test_with_redis_an_increment_never_makes_a_counter(redis_cache):
    """A counter that expired is not made again without an expiry, which Redis would keep
    for ever: the next hit starts a new one with its expiry."""
    from django.core.cache import caches

    with pytest.raises(ValueError):
        caches["default"].incr("expired")
    client = caches["default"]._cache.get_client(write=True)
    assert client.exists(caches["default"].make_key("expired")) == 0
    assert hit("expired", 60) == 1
    assert client.ttl(caches["default"].make_key("expired")) > 0


@pytest.mark.parametrize(
    ("query", "waits"), [("", ("10", "10")), ("?socket_timeout=3", ("3", "10"))]
)
def test_the_redis_cache_of_a_deployment_waits_10_seconds_at_most(query, waits):
    """redis-py waits for ever without a timeout: a hung Redis would hold every rate-limited
    request. Read from the settings a process starts with (CACHE_URL's own values win)."""
    from tests.helpers import child_env, run_manage_py

    code = (
        "from django.core.cache import cache\n"
        "pool = cache._cache.get_client(write=True).connection_pool\n"
        "print(pool.connection_kwargs.get('socket_timeout'),"
        " pool.connection_kwargs.get('socket_connect_timeout'))\n"
    )
    env = child_env(CACHE_URL=f"redis://127.0.0.1:1/0{query}")  # Nothing is asked of it.

    result = run_manage_py("shell", "-c", code, env=env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert tuple(result.stdout.splitlines()[-1].split()) == waits


def test_with_redis_counting_goes_on_after_redis_forgot_the_script(redis_cache):
    """A restarted or failed-over Redis knows no script: it is sent again, once."""
    from django.core.cache import caches

    assert hit("after-restart", 60) == 1
    assert hit("after-restart", 60) == 2
    caches["default"]._cache.get_client(write=True).script_flush()

    assert hit("after-restart", 60) == 3
