"""RQ's queues share one Redis client per server and process (django-rq made one per queue)."""

import multiprocessing

import redis

from authentications.kit.rq_connections import shared

URL = "redis://127.0.0.1:6379/7?socket_timeout=10&socket_connect_timeout=10"


def test_every_queue_to_one_server_gets_the_first_client_made_for_it():
    first, second = redis.Redis.from_url(URL), redis.Redis.from_url(URL)

    assert shared(first) is shared(second) is first


def test_another_database_or_timeout_is_another_client():
    base = shared(redis.Redis.from_url(URL))

    assert shared(redis.Redis.from_url(URL.replace("/7", "/8"))) is not base
    assert shared(redis.Redis.from_url(URL.replace("=10&", "=3&"))) is not base


def _childs_own(parent_id, queue):
    queue.put(id(shared(redis.Redis.from_url(URL))) != parent_id)


def test_a_forked_worker_makes_its_own():
    parent = shared(redis.Redis.from_url(URL))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_childs_own, args=(id(parent), queue))
    child.start()
    child.join(10)

    assert child.exitcode == 0
    assert queue.get(timeout=5) is True
