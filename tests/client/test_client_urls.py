"""The bearer token goes only where the parser that connects says, and never climbs out.

Two real servers: the fake Microsoft on 127.0.0.1 and a recorder on `localhost` that must
receive nothing, whatever the entry point. The hostile URLs read as the fake to
`urllib.parse` and as the recorder to urllib3 and requests (what really connects):
`https://localhost:<recorder>\\@127.0.0.1:<fake>/v2.0/...`.
"""

from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.core.exceptions import ValidationError
from django.core.management import execute_from_command_line
from pytest_django.asserts import assertContains

from authentications.connections.models import Authentication
from authentications.kit.validators import validate_base_url
from bcconnect.client import BusinessCentralClient, BusinessCentralRequestRefused
from tests.fakes.certs import make_certificates
from tests.fakes.entra import TENANT_ID
from tests.fakes.http import FakeServer, json_response
from tests.helpers import Tokens, add_form_data, make_client, offline_client


class Recorder:
    """The other server: records every request and answers like a friendly BC page."""

    def __init__(self):
        self.requests = []

    def handle(self, request):
        self.requests.append((request.method, request.path, request.header("authorization")))
        return json_response({"value": [{"stolen": True}]})


class OtherServer:
    def __init__(self, cert_dir):
        _, cert_path, key_path = make_certificates(cert_dir)
        self.recorder = Recorder()
        self.server = FakeServer([self.recorder], cert_path=cert_path, key_path=key_path)
        self.port = urlsplit(self.server.url).port

    def received_nothing(self):
        return self.recorder.requests == [] and self.server.connections_opened == 0


@pytest.fixture
def fake(fake_microsoft):
    return fake_microsoft


@pytest.fixture
def other(cert_dir, fake_microsoft):
    server = OtherServer(cert_dir)
    server.server.start()
    yield server
    server.server.stop()


def smuggled(fake, other, path="companies"):
    """`urllib.parse` reads the fake's host here; urllib3 reads `localhost:<other>`."""
    fake_netloc, base_path = urlsplit(fake.url).netloc, urlsplit(fake.bc.base_url()).path
    return f"https://localhost:{other.port}\\@{fake_netloc}{base_path}/{path}"


def environment_root(fake, environment="Production"):
    return f"{fake.url}/v2.0/{TENANT_ID}/{environment}"


# --- every entry point, two real servers -----------------------------------------------


def _get(client, url, fake):
    return client.get(url)


def _request(client, url, fake):
    return client.request("GET", url)


def _post(client, url, fake):
    return client.post(url, {"displayName": "x"})


def _patch(client, url, fake):
    return client.patch(url, {"displayName": "x"}, etag="*")


def _delete(client, url, fake):
    return client.delete(url, etag="*")


def _iter(client, url, fake):
    return list(client.iter(url))


def _batch(client, url, fake):
    return client.batch([{"method": "GET", "path": url}])


def _company_client(client, url, fake):
    return client.company(fake.bc.company.id).get(url)


def _next_link(client, url, fake):
    fake.bc.next_link = url
    return list(client.iter("companies"))


def _redirect(client, url, fake):
    fake.bc.fail_next(("status", 307, {"Location": url}))
    return client.get("companies")


ENTRY_POINTS = [
    _get,
    _request,
    _post,
    _patch,
    _delete,
    _iter,
    _batch,
    _company_client,
    _next_link,
    _redirect,
]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__.strip("_"))
def test_a_backslash_url_sends_nothing_to_the_host_requests_would_connect_to(
    fake, other, entry_point
):
    tokens = Tokens(fake)
    client = make_client(fake, tokens)

    with pytest.raises(BusinessCentralRequestRefused) as caught:
        entry_point(client, smuggled(fake, other), fake)

    assert other.received_nothing()
    assert "Refusing to send the bearer token" in str(caught.value)
    assert all(token not in str(caught.value) for token in tokens.issued)


def test_a_backslash_base_url_gets_no_client(fake, other):
    base_url = smuggled(fake, other, "").rstrip("/")

    with pytest.raises(BusinessCentralRequestRefused):
        BusinessCentralClient(base_url, Tokens(fake), allowed_hosts=["127.0.0.1"])

    assert other.received_nothing()


# --- `manage.py bc` --------------------------------------------------------------------


def run_bc(*args):
    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "bc", "BC production", *args])
    return exit_.value.code


@pytest.mark.django_db
@pytest.mark.parametrize(
    "hostile",
    ["argument", "next_link", "redirect"],
)
def test_the_bc_command_refuses_in_one_line_and_sends_nothing(
    tokens_planted, fake, other, capsys, hostile
):
    url = smuggled(fake, other)
    args = ["GET", url]
    if hostile == "next_link":
        fake.bc.next_link, args = url, ["GET", "companies", "--all"]
    if hostile == "redirect":
        fake.bc.fail_next(("status", 302, {"Location": url}))
        args = ["GET", "companies"]

    code = run_bc(*args)

    err = capsys.readouterr().err
    assert code == 1
    # A refused nextLink comes after the first page's rows, which are kept and printed.
    kept = "Export incomplete after 3 rows: " if hostile == "next_link" else ""
    assert err.startswith(f"CommandError: {kept}Refusing to send the bearer token")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert tokens_planted.access_token not in err
    assert other.received_nothing()


# --- no climbing out of the environment ------------------------------------------------

CLIMBS = [
    "../../Sandbox/api/v2.0/companies",
    "%2e%2e/%2e%2e/Sandbox/api/v2.0/companies",
    "%2E./.%2e/Sandbox/api/v2.0/companies",
    "%2e%2e%2f%2e%2e%2fSandbox/api/v2.0/companies",
    "..%2f..%2fSandbox/api/v2.0/companies",
    "%252e%252e/%252e%252e/Sandbox/api/v2.0/companies",
    "companies/../../../Sandbox/api/v2.0/companies",
    "./companies",
    "companies/.",
]


@pytest.mark.parametrize("path", CLIMBS)
def test_a_path_that_climbs_is_refused_before_anything_is_sent(fake, path):
    client = make_client(fake)

    with pytest.raises(BusinessCentralRequestRefused, match=r"'\.' or '\.\.' segment"):
        client.get(path)
    with pytest.raises(BusinessCentralRequestRefused):
        client.get(f"{fake.bc.base_url()}/{path}")

    assert fake.bc.requests == []


def test_a_next_link_that_climbs_into_another_environment_is_not_followed(fake):
    fake.bc.next_link = f"{fake.bc.base_url()}/%2e%2e/%2e%2e/%2e%2e/Sandbox/api/v2.0/companies"
    client = make_client(fake)

    with pytest.raises(BusinessCentralRequestRefused):
        list(client.iter("companies"))

    assert [path for _, path, _ in fake.bc.requests] == [
        urlsplit(fake.bc.base_url()).path + "/companies"
    ]


def test_another_environment_is_outside(fake):
    client = make_client(fake)

    with pytest.raises(BusinessCentralRequestRefused, match="outside"):
        client.get(f"{fake.bc.base_url('Sandbox')}/companies")

    assert fake.bc.requests == []


# --- what stays reachable: everything under the environment root ----------------------


def test_odata_v4_under_the_environment_root_is_reachable_by_absolute_url(fake):
    url = f"{environment_root(fake)}/ODataV4/Company('CRONUS USA, Inc.')/Customer_Card"

    page = make_client(fake).get(url, {"$top": 2})

    assert [card["No"] for card in page["value"]] == ["C000001", "C000002"]


def test_an_environment_client_reads_odata_v4_and_follows_its_next_links(fake):
    fake.bc.company.generated = 250
    client = make_client(fake).environment_client("ODataV4")

    cards = list(client.iter("Company('CRONUS USA, Inc.')/Customer_Card", page_size=100))

    assert client.base_url == f"{environment_root(fake)}/ODataV4"
    assert len(cards) == 250
    assert fake.bc.count("GET", "/ODataV4/") == 3


def test_an_environment_client_cannot_climb_either(fake):
    client = make_client(fake)

    for path in ("..", "%2e%2e/Sandbox", "ODataV4/../../Sandbox"):
        with pytest.raises(BusinessCentralRequestRefused):
            client.environment_client(path)
    with pytest.raises(BusinessCentralRequestRefused):
        client.environment_client("ODataV4").get("../../Sandbox/ODataV4/Company('X')/Customer_Card")
    assert fake.bc.requests == []


HOST = "https://api.businesscentral.dynamics.com"
ENVIRONMENT = f"{HOST}/v2.0/tenant/Production"
BASE = f"{ENVIRONMENT}/api/v2.0"


@responses.activate
@pytest.mark.parametrize(
    "url",
    [
        f"{ENVIRONMENT}/api/microsoft/automation/v2.0/companies",
        f"{ENVIRONMENT}/api/contoso/warehouse/v1.0/companies(1)/bins",
        f"{ENVIRONMENT}/ODataV4/Company('CRONUS%20USA')/Customer_Card",
        f"{HOST}:443/v2.0/tenant/Production/api/v2.0/companies",
    ],
)
def test_other_apis_of_the_environment_get_the_token(url):
    call = responses.get(url, json={"value": []})

    assert offline_client().get(url) == {"value": []}

    assert call.calls[0].request.headers["Authorization"] == "Bearer secret-token-value"


@responses.activate
def test_the_automation_api_through_an_environment_client():
    call = responses.get(f"{ENVIRONMENT}/api/microsoft/automation/v2.0/companies", json={})

    client = offline_client().environment_client("api/microsoft/automation/v2.0")
    client.get("companies")

    assert client.environment_url == ENVIRONMENT
    assert call.call_count == 1


@responses.activate
def test_a_base_url_without_an_environment_keeps_its_own_root_as_the_boundary():
    base = "https://bc.internal.example/custom/api/v2.0"
    client = offline_client(base)

    with pytest.raises(BusinessCentralRequestRefused, match="outside"):
        client.get("https://bc.internal.example/custom/ODataV4/x")
    assert client.environment_url == base
    assert len(responses.calls) == 0


# --- URLs whose destination is not certain ---------------------------------------------

UNSAFE = [
    f"https://evil.example\\@{HOST[8:]}/v2.0/tenant/Production/api/v2.0/companies",
    f"https://{HOST[8:]}\\.evil.example/v2.0/tenant/Production/api/v2.0/companies",
    f"https://{HOST[8:]}:evil\\.x/v2.0/tenant/Production/api/v2.0/companies",
    f"{BASE}/companies\\..\\..\\..\\Sandbox",
    f"{BASE}/companies%5c..%5c..%5cSandbox",
    f"https://user@{HOST[8:]}/v2.0/tenant/Production/api/v2.0/companies",
    f"https://user:password@{HOST[8:]}/v2.0/tenant/Production/api/v2.0/companies",
    f"https://{HOST[8:]}\t/v2.0/tenant/Production/api/v2.0/companies",
    f"https://{HOST[8:]} /v2.0/tenant/Production/api/v2.0/companies",
    f"{BASE}/compa\nnies",
    f"{BASE}/companies\x00",
    f"{BASE}/companies\x7f",
    f" {BASE}/companies",
    f"{BASE}/companies ",
    "https://api.businesscentral.dynamics.com%2eevil.example/v2.0/t/e/api/v2.0/companies",
    "https://api\uff0ebusinesscentral.dynamics.com/v2.0/tenant/Production/api/v2.0/companies",
    "https://\uff41pi.businesscentral.dynamics.com/v2.0/tenant/Production/api/v2.0/companies",
    "https:///v2.0/tenant/Production/api/v2.0/companies",
    f"{HOST}:99999/v2.0/tenant/Production/api/v2.0/companies",
]


@responses.activate
@pytest.mark.parametrize("url", UNSAFE)
def test_a_url_two_parsers_could_read_differently_is_refused(url):
    with pytest.raises(BusinessCentralRequestRefused, match="Refusing to send the bearer"):
        offline_client().get(url)

    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("path", ["companies\\..\\x", "compa\x00nies", "companies\r\nX-Evil: 1"])
def test_a_relative_path_with_odd_characters_is_refused(path):
    with pytest.raises(BusinessCentralRequestRefused):
        offline_client().get(path)

    assert len(responses.calls) == 0


@responses.activate
def test_the_refusal_shows_no_credentials_and_no_control_characters():
    with pytest.raises(BusinessCentralRequestRefused) as caught:
        offline_client().get(f"https://user:hunter2@{HOST[8:]}/x\x1b[31m?token=abc")

    shown = str(caught.value)
    assert "hunter2" not in shown and "token=abc" not in shown and "\x1b" not in shown


@responses.activate
def test_spaces_and_quotes_in_an_odata_key_are_still_fine():
    call = responses.get(f"{ENVIRONMENT}/ODataV4/Company('CRONUS%20USA,%20Inc.')/Customer_Card")

    offline_client().environment_client("ODataV4").get("Company('CRONUS USA, Inc.')/Customer_Card")

    assert call.call_count == 1


# --- the base URL staff type ------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://evil.example\\@{HOST[8:]}/v2.0/t/Production/api/v2.0",
        f"{ENVIRONMENT}/../Sandbox/api/v2.0",
        f"{ENVIRONMENT}/%2e%2e/Sandbox/api/v2.0",
        f"{ENVIRONMENT}/api/v2.0/.",
        f"{BASE}\\..\\..",
        f"{BASE}/\x00",
        "https://api\uff0ebusinesscentral.dynamics.com/v2.0/t/Production/api/v2.0",
    ],
)
def test_a_base_url_with_an_uncertain_destination_cannot_be_configured(settings, base_url):
    settings.BC_API_HOST = HOST
    settings.BC_API_ALLOWED_HOSTS = []

    with pytest.raises(ValidationError) as caught:
        validate_base_url(base_url)

    assert caught.value.code == "unsafe"


def test_a_plain_base_url_is_still_valid(settings):
    settings.BC_API_HOST = HOST
    settings.BC_API_ALLOWED_HOSTS = []

    validate_base_url(BASE)


@pytest.mark.django_db
def test_the_admin_form_refuses_a_backslash_base_url_and_saves_nothing(admin_client, fake):
    host = urlsplit(fake.url).netloc
    hostile = f"https://evil.example\\@{host}/v2.0/{TENANT_ID}/Production/api/v2.0"

    response = admin_client.post(
        "/admin/authentications/authentication/add/", add_form_data(fake, base_url=hostile)
    )

    assertContains(response, "backslash")
    assert not Authentication.objects.exists()


def test_the_other_server_really_listens(other, fake):
    """The recorder would have seen a request: this test proves it is reachable."""
    answer = requests.get(f"https://localhost:{other.port}/x", verify=str(fake.ca_path), timeout=5)

    assert answer.json() == {"value": [{"stolen": True}]}
    assert other.recorder.requests == [("GET", "/x", "")]
