"""Fixtures of the change-notification tests: on RQ (the `task_engines` run of .ci/run), each
test starts with an empty queue, as each starts with an empty task table on the database."""

import pytest

from tests.webhooks.helpers import forget_queued_tasks, on_rq


@pytest.fixture(autouse=True)
def _empty_rq_queue():
    if on_rq():
        forget_queued_tasks()
    yield
