"""Schemathesis fuzzes the API from its own schema, with a valid key: no 5xx, every answer
as documented. Bounded (SCHEMATHESIS_EXAMPLES per operation) so CI stays under a minute."""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", 80))


@pytest.fixture
def wsgi_app():
    """The WSGI app as gunicorn runs it, minus closing the database connection after each
    request (the test's transaction lives on it), as Django's test client does."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield get_wsgi_application()
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.mark.schemathesis
def test_the_api_answers_as_its_schema_says(
    wsgi_app, make_key, tokens_planted, make_endpoint, record_property
):
    _, plaintext = make_key(tokens_planted, scopes=["tokens", "bc.read", "endpoints"])
    headers = {"Authorization": f"Api-Key {plaintext}"}
    api = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = [result.ok() for result in api.get_all_operations()]
    examples = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case):
            nonlocal examples
            examples += 1
            case.call_and_validate(headers=headers)

        answers_as_documented()

    figure = f"schemathesis: {len(operations)} operations, {examples} examples, 0 failures"
    record_property("api figure", figure)
    assert len(operations) >= 3
