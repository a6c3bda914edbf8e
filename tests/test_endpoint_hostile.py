"""Hostile review of endpoints (issue 12): each test here failed before its fix."""

import io

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from authentications.endpoints import Endpoint

pytestmark = pytest.mark.django_db


# --- the bc command never changes data silently ---------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_bc_command_refuses_a_write_endpoint_without_yes(
    tokens_planted, make_endpoint, fake_microsoft, capsys, method
):
    make_endpoint(
        tokens_planted,
        name="Writer",
        method=method,
        body={"displayName": "x"} if method != "DELETE" else None,
        headers=[["If-Match", "*"]] if method != "POST" else [],
    )

    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "bc", "--endpoint", "Writer"])

    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"Writer sends a {method}" in err and "--yes" in err and err.count("\n") == 1
    assert fake_microsoft.bc.requests == []


def test_bc_command_with_a_format_still_needs_yes_for_a_write(
    tokens_planted, make_endpoint, fake_microsoft
):
    make_endpoint(tokens_planted, name="Create", method="POST", body={"displayName": "y"})

    with pytest.raises(CommandError, match="Add --yes to send it; nothing was sent"):
        call_command("bc", "--endpoint", "Create", "--format", "csv", stdout=io.StringIO())
    assert fake_microsoft.bc.count("POST") == 0


def test_bc_command_yes_does_not_change_a_get(tokens_planted, make_endpoint, fake_microsoft):
    make_endpoint(tokens_planted, name="Reader", params=[["$top", "2"]])
    out = io.StringIO()

    call_command("bc", "--endpoint", "Reader", "--yes", "--all", stdout=out)

    assert len(out.getvalue().splitlines()) == 2
    assert Endpoint.objects.get(name="Reader").method == "GET"
