"""Pooled sessions are made once per process, never shared with a forked child."""

import multiprocessing

from authentications.connections import oauth
from authentications.kit.per_process import PerProcess


def test_the_same_object_within_a_process():
    made = PerProcess(object)

    assert made.get() is made.get()
    assert oauth.http_session() is oauth.http_session()


def _child_makes_its_own(queue):
    inherited = oauth._sessions._value  # The parent's session, copied by fork.
    queue.put(oauth.http_session() is not inherited and inherited is not None)


def test_a_forked_child_makes_its_own():
    oauth.http_session()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_makes_its_own, args=(queue,))
    child.start()
    child.join(10)

    assert child.exitcode == 0
    assert queue.get(timeout=5) is True
