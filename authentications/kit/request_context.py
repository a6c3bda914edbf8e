"""The id of the request being served, on every log line it causes and in the tasks it queues.

An operator who finds one line of a failed notification finds the rest by its id: the
request that stored it and the task that delivered it (`deliver_records` takes the id along).
"""

import contextlib
import contextvars
import logging
import re
import uuid

_current = contextvars.ContextVar("bcconnect_request_id", default="")
# What an id from a proxy may look like: enough for UUIDs and the usual trace ids, nothing
# that could forge a log line or field.
_VALID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def current():
    """The id bound now, or "" outside any request and task."""
    return _current.get()


def new():
    return uuid.uuid4().hex


def given_or_new(value):
    """An id a trusted proxy sent, when it looks like one; else a new id."""
    return value if value and _VALID.fullmatch(value) else new()


@contextlib.contextmanager
def bound(request_id):
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Put the current id on each record as `request_id` ("" outside any request)."""

    def filter(self, record):
        record.request_id = current()
        return True
