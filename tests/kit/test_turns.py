"""Threads take turns for a database lock in their process, but never wait without end."""

import threading
import time

from authentications.kit.turns import in_turn


def test_a_turn_is_taken_and_given_back():
    lock = threading.Lock()

    with in_turn(lock):
        assert lock.locked()
    assert not lock.locked()


def test_a_thread_goes_on_without_its_turn_once_the_wait_is_over():
    """A holder that hangs (a stuck statement) delays the others by the bound, not forever;
    the database's own lock still keeps their writes correct."""
    lock = threading.Lock()
    lock.acquire()  # Held by a thread that never gives it back.
    started = time.monotonic()

    with in_turn(lock, timeout=0.2):
        waited = time.monotonic() - started

    assert waited >= 0.2
    assert lock.locked()  # Still the holder's: not released by the thread that never had it.
