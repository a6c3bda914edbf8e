"""Taking turns within a process before taking a database lock that all processes share.

SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to
100 ms each), so under a burst a request could wait a second for a lock that is free most
of that time. Queued on a lock here, the threads of one web worker hand it on at once; only
writers of other processes still poll. The writes made on every request (a notification
POST's, an API call's rate count and audit row) take `one_writer()`; PostgreSQL locks rows,
not the database, so there it is no lock at all.

The wait for a turn is bounded (LOCK_WAIT_SECONDS): past it the thread goes on without its
turn, and the database's own lock, which this only puts in order, keeps the write correct.
"""

import contextlib
import threading

from django.db import connection

LOCK_WAIT_SECONDS = 10

# Re-entrant: a write inside another's block never waits on itself.
_writer = threading.RLock()


@contextlib.contextmanager
def in_turn(lock, *, timeout=LOCK_WAIT_SECONDS):
    """Wait for `lock` up to `timeout` seconds, then go on whether or not it was taken."""
    taken = lock.acquire(timeout=timeout)
    try:
        yield
    finally:
        if taken:
            lock.release()


def one_writer():
    """Around one short write transaction: this process's threads in turn, on SQLite."""
    return in_turn(_writer) if connection.vendor == "sqlite" else contextlib.nullcontext()
