"""Staff define endpoints in the admin; what could not be sent safely is refused with a reason."""

import pytest

from authentications.endpoints.forms import EndpointForm
from authentications.endpoints.models import Endpoint
from tests.helpers import endpoint_form_data, endpoint_url

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/authentications/endpoint/add/"


def errors_of(authentication, instance=None, **fields):
    form = EndpointForm(endpoint_form_data(authentication, **fields), instance=instance)
    form.is_valid()
    return {name: " ".join(messages) for name, messages in form.errors.items()}


def test_admin_adds_an_endpoint_with_rows(admin_client, connected_row):
    response = admin_client.post(
        ADD_URL,
        endpoint_form_data(
            connected_row,
            params=[("$filter", "city eq 'Miami'"), ("$top", "10")],
            headers=[("Accept-Language", "en-US")],
            _continue="Save",
        ),
    )

    endpoint = Endpoint.objects.get(name="Customers")
    assert response.status_code == 302 and response["Location"] == endpoint_url(endpoint)
    assert endpoint.params == [["$filter", "city eq 'Miami'"], ["$top", "10"]]
    assert endpoint.headers == [["Accept-Language", "en-US"]]
    assert endpoint.read_only_intent is True


def test_change_page_shows_the_whole_url_as_one_line(admin_client, connected_row, make_endpoint):
    endpoint = make_endpoint(connected_row, params=[["$top", "5"]])

    page = admin_client.get(endpoint_url(endpoint)).content.decode()

    root = connected_row.base_url.removesuffix("/api/v2.0")
    expected = f"{root}/api/v2.0/companies({endpoint.company_id})/customers?$top=5"
    assert expected in page
    assert 'name="params-key-0" value="$top"' in page


@pytest.mark.parametrize(
    "path, expected",
    [
        ("../Sandbox/api/v2.0/companies", "Refusing to send the bearer token"),
        ("api/v2.0/%2e%2e/%2e%2e/Sandbox/api", "Refusing to send the bearer token"),
        ("https://evil.example/api/v2.0/companies", "relative to the environment root"),
        ("//evil.example/x", "relative to the environment root"),
        ("api/v2.0/companies\\..\\x", "backslash"),
    ],
)
def test_paths_the_token_may_not_follow_are_refused(connected_row, path, expected):
    assert expected in errors_of(connected_row, path=path)["path"]


@pytest.mark.parametrize(
    "header, reason",
    [
        ("Authorization", "credential"),
        ("authorization", "credential"),
        ("Cookie", "credential"),
        ("Proxy-Authorization", "proxy"),
        ("X-Api-Key", "credential"),
        ("Ocp-Apim-Subscription-Key", "credential"),
        ("Host", "decides which server"),
        ("X-HTTP-Method-Override", "method"),
    ],
)
def test_headers_that_could_carry_a_credential_are_refused(connected_row, header, reason):
    message = errors_of(connected_row, headers=[(header, "s3cr3t-value")])["headers"]

    assert header in message and reason in message
    assert "s3cr3t-value" not in message


def test_a_header_value_with_a_line_break_is_refused(connected_row):
    assert "headers" in errors_of(connected_row, headers=[("X-Note", "a\r\nX-Evil: 1")])


def test_bad_json_body_is_refused(connected_row):
    errors = errors_of(connected_row, method="POST", body="{oops")

    assert "Enter a valid JSON" in errors["body"]


def test_a_get_has_no_body(connected_row):
    assert "has no body" in errors_of(connected_row, body='{"a": 1}')["body"]


def test_a_body_must_be_an_object(connected_row):
    assert "JSON object" in errors_of(connected_row, method="POST", body='"text"')["body"]


def test_patch_needs_an_if_match_header(connected_row):
    errors = errors_of(connected_row, method="PATCH", body='{"displayName": "x"}')

    assert "needs an If-Match header" in errors["headers"]


def test_a_value_without_a_name_is_refused(connected_row):
    assert "needs a name" in errors_of(connected_row, params=[("", "10")])["params"]


def test_a_base_url_on_a_host_bc_does_not_allow_is_refused(connected_row, settings):
    settings.BC_API_HOST = "https://api.businesscentral.dynamics.com"

    assert "not an allowed BC host" in errors_of(connected_row)["path"]


def test_placeholder_without_company_is_accepted_until_it_is_sent(connected_row):
    assert errors_of(connected_row) == {}


def test_changing_the_authentication_drops_the_company(
    connected_row, make_endpoint, make_authentication
):
    endpoint = make_endpoint(connected_row)
    other = make_authentication(name="BC staging")

    form = EndpointForm(endpoint_form_data(other), instance=endpoint)
    assert form.is_valid(), form.errors
    form.save()

    endpoint.refresh_from_db()
    assert endpoint.authentication == other and endpoint.company_id == ""


def test_a_refused_form_changes_nothing(admin_client, connected_row, make_endpoint):
    endpoint = make_endpoint(connected_row, name="Kept")

    response = admin_client.post(
        endpoint_url(endpoint),
        endpoint_form_data(connected_row, name="Changed", headers=[("Cookie", "a=b")]),
    )

    assert response.status_code == 200
    assert "cannot be stored" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.name == "Kept" and endpoint.headers == []


def test_parameters_stored_as_a_dict_show_as_rows(admin_client, connected_row, make_endpoint):
    endpoint = make_endpoint(connected_row, params={"$top": "5", "$select": "number"})

    page = admin_client.get(endpoint_url(endpoint)).content.decode()

    assert 'name="params-key-1" value="$select"' in page
    assert 'name="params-value-1" value="number"' in page


def test_a_refused_header_value_is_not_rendered_back(admin_client, connected_row, make_endpoint):
    endpoint = make_endpoint(connected_row, headers=[["X-Api-Key", "stored-by-code-secret"]])

    shown = admin_client.get(endpoint_url(endpoint)).content.decode()
    typed = admin_client.post(
        endpoint_url(endpoint),
        endpoint_form_data(connected_row, headers=[("Cookie", "typed-session-secret")]),
    ).content.decode()

    assert 'value="X-Api-Key"' in shown and "stored-by-code-secret" not in shown
    assert "cannot be stored" in typed and "typed-session-secret" not in typed


def test_no_body_shows_an_empty_box_and_saves_as_none(admin_client, connected_row, make_endpoint):
    endpoint = make_endpoint(connected_row)

    page = admin_client.get(endpoint_url(endpoint)).content.decode()
    admin_client.post(endpoint_url(endpoint), endpoint_form_data(connected_row, body=""))

    assert "null</textarea>" not in page
    endpoint.refresh_from_db()
    assert endpoint.body is None


@pytest.mark.parametrize(
    "fields",
    [
        {"params": [("\x00", "1")]},
        {"params": [("$top", "1\x00")]},
        {"method": "POST", "body": '{"displayName": "a\\u0000b"}'},
        {"method": "POST", "body": '{"a\\u0000": 1}'},
    ],
    ids=["parameter-name", "parameter-value", "body-value", "body-key"],
)
def test_a_null_character_is_refused_not_a_500(admin_client, connected_row, fields):
    """PostgreSQL stores no NUL in JSON (the stress fuzz found a parameter named "\\x00"):
    the save was a 500 there, and a NUL is in no request BC answers anyway."""
    response = admin_client.post(ADD_URL, endpoint_form_data(connected_row, **fields))

    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not Endpoint.objects.exists()
