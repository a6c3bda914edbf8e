"""One Redis client per process for RQ, where django-rq makes a new one for every queue.

django-tasks-rq asks django-rq for the queue on every enqueue, and django-rq builds a new
Redis client from RQ_QUEUES' URL each time: a new connection pool, so a new TCP connection
(and redis-py's CLIENT SETINFO, with a package-metadata lookup) for every task queued: 3-4
ms of every change-notification POST on the RQ engine. `PooledQueue`, RQ_QUEUES'
QUEUE_CLASS, swaps that fresh client, before it is ever used, for this process's client to
the same server, whose pool keeps its connections. A forked worker makes its own (redis-py
pools also notice a fork and reconnect).
"""

import threading

from django_rq.queues import DjangoRQ

from authentications.kit.per_process import PerProcess

# What tells two clients apart: where they connect, as whom, and how long they wait.
_SAME_SERVER = (
    "host",
    "port",
    "path",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
)
_clients = PerProcess(dict)
_lock = threading.Lock()


class PooledQueue(DjangoRQ):
    def __init__(self, *args, connection=None, **kwargs):
        super().__init__(*args, connection=shared(connection), **kwargs)


def shared(connection):
    """This process's client for `connection`'s server (the first one seen becomes it)."""
    if connection is None:
        return None
    settings = connection.connection_pool.connection_kwargs
    key = tuple(settings.get(name) for name in _SAME_SERVER)
    with _lock:
        return _clients.get().setdefault(key, connection)
