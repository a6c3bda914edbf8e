"""`python manage.py bc` calls Business Central from the command line."""

import io
import json

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

pytestmark = pytest.mark.django_db


def bc(*args):
    out = io.StringIO()
    call_command("bc", *args, stdout=out)
    return out.getvalue()


def customers(fake):
    return f"companies({fake.bc.company.id})/customers"


def test_get_prints_the_answer_as_json(tokens_planted):
    answer = json.loads(bc("BC production", "GET", "companies"))

    assert [c["name"] for c in answer["value"]][0] == "CRONUS USA, Inc."


def test_json_flag_prints_one_line(tokens_planted):
    output = bc("BC production", "get", "companies", "--json")

    assert output.count("\n") == 1
    assert json.loads(output)["value"]


def test_all_streams_json_lines_across_pages(tokens_planted, fake_microsoft):
    fake_microsoft.bc.company.generated = 2_500

    output = bc(
        "BC production",
        "GET",
        customers(fake_microsoft),
        "--param",
        "$filter=city eq 'Miami'",
        "--all",
    )

    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 500
    assert {line["city"] for line in lines} == {"Miami"}


def test_post_and_patch_with_data_and_etag(tokens_planted, fake_microsoft, tmp_path):
    body = tmp_path / "customer.json"
    body.write_text(json.dumps({"displayName": "From a file"}))

    created = json.loads(
        bc("BC production", "POST", customers(fake_microsoft), "--data", f"@{body}")
    )
    path = f"{customers(fake_microsoft)}({created['id']})"
    updated = json.loads(
        bc(
            "BC production",
            "PATCH",
            path,
            "--etag",
            created["@odata.etag"],
            "--data",
            '{"displayName": "Renamed"}',
        )
    )

    assert created["displayName"] == "From a file"
    assert updated["displayName"] == "Renamed"


def test_environment_root_reaches_odata_v4_web_services(tokens_planted):
    output = bc(
        "BC production",
        "GET",
        "ODataV4/Company('CRONUS USA, Inc.')/Customer_Card",
        "--param",
        "$top=2",
        "--environment-root",
    )

    assert [card["No"] for card in json.loads(output)["value"]] == ["C000001", "C000002"]


def test_environment_root_does_not_let_a_path_climb_out(tokens_planted, fake_microsoft):
    with pytest.raises(CommandError, match="Refusing to send the bearer token"):
        bc("BC production", "GET", "../Sandbox/api/v2.0/companies", "--environment-root")
    assert fake_microsoft.bc.requests == []


@pytest.mark.parametrize(
    "args, expected",
    [
        (["Nobody", "GET", "companies"], "No authentication named 'Nobody'."),
        (["BC production", "GET", "companies", "--param", "nonsense"], "expected key=value"),
        (["BC production", "POST", "companies", "--data", "{oops"], "--data is not valid JSON"),
        (["BC production", "POST", "companies", "--data", "@/no/such/file"], "No such file"),
        (["BC production", "POST", "companies", "--all"], "--all only works with GET"),
        (["BC production", "PATCH", "companies(x)", "--data", "{}"], "needs an ETag"),
        (["BC production", "GET", "https://evil.example/x"], "Refusing to send"),
    ],
)
def test_bad_input_is_one_readable_line(tokens_planted, args, expected):
    with pytest.raises(CommandError) as caught:
        bc(*args)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bc_errors_are_one_line_with_the_code_and_no_token(tokens_planted, fake_microsoft, capsys):
    path = f"{customers(fake_microsoft)}(00000000-0000-0000-0000-000000000000)"

    with pytest.raises(CommandError) as caught:
        bc("BC production", "GET", path)

    message = str(caught.value)
    assert "The Customer does not exist" in message and "BadRequest_NotFound" in message
    assert "[HTTP 404]" in message and "\n" not in message
    tokens_planted.refresh_from_db()
    assert tokens_planted.access_token not in message


def test_command_exits_non_zero_with_one_line(tokens_planted, capsys):
    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "bc", "Nobody", "GET", "companies"])

    assert exit_.value.code == 1
    assert capsys.readouterr().err == "CommandError: No authentication named 'Nobody'.\n"
