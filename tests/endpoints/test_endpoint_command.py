"""`python manage.py bc --endpoint NAME` runs a stored endpoint from the command line."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from authentications.endpoints.models import Endpoint

pytestmark = pytest.mark.django_db


def run_bc(*args):
    out = io.StringIO()
    call_command("bc", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def customers(tokens_planted, make_endpoint, fake_microsoft):
    fake_microsoft.bc.company.generated = 1_500
    return make_endpoint(
        tokens_planted,
        name="Customers",
        params=[["$select", "number,city"], ["$filter", "city eq 'Miami'"]],
    )


def test_all_as_jsonl_by_default(customers):
    lines = [json.loads(line) for line in run_bc("--endpoint", "Customers", "--all").splitlines()]

    assert len(lines) == 300 and {line["city"] for line in lines} == {"Miami"}


def test_all_as_csv(customers):
    text = run_bc("--endpoint", "Customers", "--all", "--format", "csv")

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["@odata.etag", "number", "city", "_extra"]
    assert len(rows) == 301


def test_all_as_one_json_array(customers):
    rows = json.loads(run_bc("--endpoint", "Customers", "--all", "--format", "json"))

    assert len(rows) == 300 and rows[0]["number"] == "C000003"


def test_params_override_the_stored_ones(customers):
    output = run_bc(
        "--endpoint",
        "Customers",
        "--all",
        "--param",
        "$filter=city eq 'Boston'",
        "--param",
        "$top=4",
    )

    assert [json.loads(line)["city"] for line in output.splitlines()] == ["Boston"] * 4


def test_without_all_prints_the_first_answer(customers, fake_microsoft):
    answer = json.loads(run_bc("--endpoint", "Customers", "--param", "$top=2"))

    assert [row["number"] for row in answer["value"]] == ["C000003", "C000008"]
    assert fake_microsoft.bc.intents() == ["ReadOnly"]


def test_first_answer_as_csv(customers):
    rows = list(csv.reader(io.StringIO(run_bc("--endpoint", "Customers", "--format", "csv"))))

    assert rows[0][-1] == "_extra" and len(rows) == 301


def test_a_write_endpoint_runs_once(tokens_planted, make_endpoint, fake_microsoft):
    make_endpoint(
        tokens_planted,
        name="New customer",
        method=Endpoint.Method.POST,
        body={"displayName": "From the command line"},
    )

    created = json.loads(run_bc("--endpoint", "New customer", "--json", "--yes"))

    assert created["displayName"] == "From the command line"
    assert fake_microsoft.bc.count("POST") == 1


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--endpoint", "Nobody"], "No endpoint named 'Nobody'."),
        (["--endpoint", "Customers", "--param", "oops"], "expected key=value"),
        (["--endpoint", "Customers", "BC production"], "--endpoint takes no AUTHENTICATION"),
        (["--endpoint", "Customers", "--data", "{}"], "--endpoint takes no AUTHENTICATION"),
        (
            ["BC production", "GET", "companies", "--format", "csv"],
            "--format works with --endpoint",
        ),
        (["BC production", "GET"], "path is missing"),
        ([], "authentication is missing"),
    ],
)
def test_bad_endpoint_input_is_one_readable_line(customers, args, expected):
    with pytest.raises(CommandError) as caught:
        run_bc(*args)

    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_all_refuses_a_write_endpoint(tokens_planted, make_endpoint, fake_microsoft):
    make_endpoint(tokens_planted, name="Create", method="POST", body={})

    with pytest.raises(CommandError, match="--all only works with GET; Create is a POST"):
        run_bc("--endpoint", "Create", "--all")
    assert fake_microsoft.bc.requests == []


def test_bc_refusal_exits_non_zero_with_one_line(customers, fake_microsoft, capsys):
    fake_microsoft.bc.denied["jane@contoso.com"] = {"customers"}

    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "bc", "--endpoint", "Customers", "--all"])

    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("CommandError: Sorry, the current permissions prevented the action")
    assert "[HTTP 403]" in err and err.count("\n") == 1


def test_a_failure_midway_exits_non_zero_after_the_rows(
    tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 25_000
    make_endpoint(tokens_planted, name="Many", params=[["$select", "number"]])
    fake_microsoft.bc.fail_next(("sleep", 0), ("status", 403))  # Page one served, then 403.
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"^Export incomplete: Fault injected .*\[HTTP 403\]"):
        call_command("bc", "--endpoint", "Many", "--all", stdout=out)

    assert len(out.getvalue().splitlines()) == 20_000
