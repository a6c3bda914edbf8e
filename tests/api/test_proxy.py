"""The BC proxy: the caller's request goes to its authentication's BC base URL and nowhere
else; BC's answer comes back streamed, its next links pointing at the proxy."""

import json
import time

import pytest

from authentications.api import proxy
from authentications.api.models import ApiCall
from tests.helpers import key_check_reads, problem


def bc_url(authentication, path=""):
    return f"/api/v1/authentications/{authentication.pk}/bc/{path}"


@pytest.fixture
def reader(make_key, caller, tokens_planted):
    _, plaintext = make_key(tokens_planted, scopes=["bc.read"])
    return caller(plaintext)


@pytest.fixture
def writer(make_key, caller, tokens_planted):
    _, plaintext = make_key(tokens_planted, scopes=["bc.read", "bc.write"])
    return caller(plaintext)


def body(response):
    return b"".join(response.streaming_content)


def test_a_get_is_answered_by_bc_through_the_proxy(reader, tokens_planted, fake_microsoft):
    response = reader.get(bc_url(tokens_planted, "companies?$select=id,name"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    names = [company["name"] for company in json.loads(body(response))["value"]]
    assert fake_microsoft.bc.company.name in names
    assert fake_microsoft.bc.requests[-1][2] == "$select=id,name"
    audit = ApiCall.objects.get()  # Written once the streamed body was sent.
    assert audit.path == f"{bc_url(tokens_planted, 'companies')}?$select="
    assert audit.status == 200 and audit.authentication == tokens_planted and audit.bytes > 100


def test_next_links_point_back_at_the_proxy_and_page_with_the_same_key(
    reader, tokens_planted, fake_microsoft
):
    company = fake_microsoft.bc.company.id
    path = f"companies({company})/customers"
    url, rows = bc_url(tokens_planted, path), []
    for _ in range(20):
        page = reader.get(url, HTTP_PREFER="odata.maxpagesize=20")
        answer = json.loads(body(page))
        rows += answer["value"]
        url = answer.get("@odata.nextLink")
        if url is None:
            break
        assert url.startswith(f"http://testserver{bc_url(tokens_planted, path)}?")
        assert fake_microsoft.url not in url
        url = url.removeprefix("http://testserver")
    assert len(rows) == 50 and len({row["id"] for row in rows}) == 50
    assert page["Preference-Applied"] == "odata.maxpagesize=20"


@pytest.mark.parametrize(
    "path",
    [
        "..%2F..%2Fv2.0",
        "companies/../../../other-tenant",
        "companies/%2e%2e/%2e%2e/x",
        "companies/%252e%252e/x",
        "companies/.%2E/x",
        "companies%2fx",
        "companies%252fx",
        "companies\\..\\x",
        "companies%5cx",
        "https:%2F%2Fevil.example/x",
        "https://evil.example/x",
        "/evil.example/x",
        "user@evil.example/x",
        "companies%40x",
        "companies%00x",
    ],
)
def test_paths_that_could_leave_the_base_url_are_refused_and_nothing_is_sent(
    reader, tokens_planted, fake_microsoft, path
):
    raw = bc_url(tokens_planted, path)

    response = reader.get(raw, RAW_URI=raw)  # As gunicorn passes the request line.

    problem(response, 400, "path_refused")
    assert fake_microsoft.bc.requests == []


def test_the_path_checks_themselves():
    assert (
        proxy.checked_path("companies(1)/customers('a%20b')") == "companies(1)/customers('a%20b')"
    )
    assert proxy.checked_path("") == ""
    with pytest.raises(proxy.PathRefused):
        proxy.checked_path("a/%2e%2e/b")


def test_reading_needs_bc_read_and_writing_bc_write(
    make_key, caller, tokens_planted, fake_microsoft
):
    _, tokens_only = make_key(tokens_planted, scopes=["tokens"])
    _, read_only = make_key(tokens_planted, scopes=["bc.read"])
    company = fake_microsoft.bc.company.id
    new = {"displayName": "Made through the proxy"}

    problem(caller(tokens_only).get(bc_url(tokens_planted, "companies")), 403, "scope_missing")
    for method in ("post", "patch", "put", "delete"):
        answer = getattr(caller(read_only), method)(
            bc_url(tokens_planted, f"companies({company})/customers"), new, format="json"
        )
        problem(answer, 403, "scope_missing")
    problem(
        caller(read_only).post(bc_url(tokens_planted, "$batch"), {}, format="json"),
        403,
        "scope_missing",
    )
    assert fake_microsoft.bc.requests == []


def test_a_write_goes_through_with_bc_write_and_bc_answers_as_is(
    writer, tokens_planted, fake_microsoft
):
    company = fake_microsoft.bc.company.id
    url = bc_url(tokens_planted, f"companies({company})/customers")

    made = writer.post(url, {"displayName": "Made through the proxy"}, format="json")

    assert made.status_code == 201
    created = json.loads(body(made))
    assert created["displayName"] == "Made through the proxy"
    assert made["ETag"]
    entity = bc_url(tokens_planted, f"companies({company})/customers({created['id']})")
    blind = writer.patch(entity, {"displayName": "x"}, format="json")
    problem(blind, 428, "etag_required")
    changed = writer.patch(
        entity, {"displayName": "Renamed"}, format="json", HTTP_IF_MATCH=made["ETag"]
    )
    assert changed.status_code == 200
    assert json.loads(body(changed))["displayName"] == "Renamed"
    stale = writer.patch(
        entity, {"displayName": "Again"}, format="json", HTTP_IF_MATCH=made["ETag"]
    )
    assert stale.status_code == 409  # BC's own refusal (the fake's), passed back as sent.
    assert json.loads(body(stale))["error"]["code"]


def test_bc_errors_pass_back_with_bcs_status_and_body(reader, tokens_planted):
    response = reader.get(
        bc_url(tokens_planted, "companies(00000000-0000-0000-0000-000000000000)/customers")
    )

    assert 400 <= response.status_code < 500
    assert "error" in json.loads(body(response))


def test_a_retry_after_longer_than_the_bound_is_passed_back_at_once(
    reader, tokens_planted, fake_microsoft, settings
):
    settings.BC_API_MAX_WAIT_SECONDS = 5
    fake_microsoft.bc.fail_next(("status", 429, {"Retry-After": "3600"}))

    started = time.monotonic()
    response = reader.get(bc_url(tokens_planted, "companies"))

    assert time.monotonic() - started < 3
    assert response.status_code == 429
    assert response["Retry-After"] == "3600"
    assert len(fake_microsoft.bc.requests) == 1


def test_a_short_retry_after_is_waited_out_within_the_bound(
    reader, tokens_planted, fake_microsoft, settings
):
    settings.BC_API_MAX_WAIT_SECONDS = 5
    fake_microsoft.bc.fail_next(("status", 429, {"Retry-After": "1"}))

    response = reader.get(bc_url(tokens_planted, "companies"))

    assert response.status_code == 200
    assert len(fake_microsoft.bc.requests) == 2


def test_a_proxied_get_makes_one_read_the_key_check_with_the_token(
    reader, tokens_planted, fake_microsoft
):
    """The key check's read carries the token and base URL the first BC request sends."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reader.get(bc_url(tokens_planted, "companies"))  # The rate limit's window exists now.
    with CaptureQueriesContext(connection) as captured:
        response = reader.get(bc_url(tokens_planted, "companies"))
        body(response)

    assert response.status_code == 200
    reads = key_check_reads(captured)
    assert len(reads) == 1
    assert tokens_planted._meta.db_table in reads[0] and "base_url" in reads[0]
    assert fake_microsoft.bc.requests[-1][0] == "GET"


def test_a_token_about_to_expire_is_refreshed_before_the_first_request(
    reader, tokens_planted, fake_microsoft
):
    from tests.helpers import expiring

    expiring(tokens_planted, seconds=5)

    assert reader.get(bc_url(tokens_planted, "companies")).status_code == 200
    assert fake_microsoft.entra.count("refresh_token") == 1


def test_an_expired_token_is_refreshed_on_bcs_401(reader, tokens_planted, fake_microsoft):
    from authentications.connections.models import Authentication
    from tests.helpers import ROW_ACCESS_TOKEN

    Authentication.objects.filter(pk=tokens_planted.pk).update(access_token=ROW_ACCESS_TOKEN)

    response = reader.get(bc_url(tokens_planted, "companies"))

    assert response.status_code == 200
    assert fake_microsoft.entra.count("refresh_token") == 1


def test_bc_unreachable_is_a_502_problem(reader, tokens_planted, fake_microsoft, settings):
    settings.BC_API_MAX_WAIT_SECONDS = 0.5
    fake_microsoft.bc.fail_next(*[("drop",)] * 10)

    problem(reader.get(bc_url(tokens_planted, "companies")), 502, "bc_unreachable")


def test_the_rewriter_handles_a_link_split_across_chunks():
    rewriter = proxy.LinkRewriter(bc_base="https://bc/v2.0/t/p/api/v2.0/", here="http://me/bc/")
    document = json.dumps(
        {
            "value": [{"a": "@odata.nextLink"}],
            "@odata.nextLink": "https://bc/v2.0/t/p/api/v2.0/c?$skiptoken=5",
        }
    ).encode()
    for size in (1, 2, 3, 7, 16, len(document)):
        chunks = [document[i : i + size] for i in range(0, len(document), size)]
        out = b"".join(rewriter.stream(iter(chunks), base="https://bc/v2.0/t/p/api/v2.0/c"))
        assert json.loads(out)["@odata.nextLink"] == "http://me/bc/c?$skiptoken=5", size
        assert json.loads(out)["value"] == [{"a": "@odata.nextLink"}]


def test_a_large_answer_streams_through_the_rewriter_in_bounded_memory():
    import tracemalloc

    rewriter = proxy.LinkRewriter(bc_base="https://bc/api/", here="http://me/bc/")
    row = b'{"id": "%08d", "displayName": "Customer with a long enough name"},'
    rows = 400_000  # About 27 MB.

    def chunks():
        yield b'{"value": ['
        for start in range(0, rows, 1000):
            yield b"".join(row % index for index in range(start, start + 1000))
        yield b'{}], "@odata.nextLink": "https://bc/api/c?$skiptoken=1"}'

    tracemalloc.start()
    size, tail = 0, b""
    for piece in rewriter.stream(chunks(), base="https://bc/api/c"):
        size, tail = size + len(piece), (tail + piece)[-200:]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert size > 25_000_000
    assert tail.endswith(b'"@odata.nextLink": "http://me/bc/c?$skiptoken=1"}')
    assert peak < 1_000_000


def test_bc_refusing_even_a_fresh_token_is_a_502_not_a_401(reader, tokens_planted, fake_microsoft):
    fake_microsoft.bc.fail_next(("status", 401), ("status", 401))

    body = problem(reader.get(bc_url(tokens_planted, "companies")), 502, "bc_token_refused")

    assert fake_microsoft.entra.count("refresh_token") == 1  # Refreshed once, then given up.
    assert tokens_planted.access_token not in body["detail"]


def test_a_body_too_large_is_a_413_and_nothing_is_sent(
    writer, tokens_planted, fake_microsoft, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    company = fake_microsoft.bc.company.id

    answer = writer.post(
        bc_url(tokens_planted, f"companies({company})/customers"),
        {"displayName": "x" * 200},
        format="json",
    )

    problem(answer, 413, "body_too_large")
    assert fake_microsoft.bc.requests == []


def test_an_id_of_thousands_of_digits_is_a_404_and_nothing_is_sent(reader, fake_microsoft):
    """The proxy's URL takes any run of digits; past 4,300 Python will not make it a number
    (this was a 500)."""
    response = reader.get(f"/api/v1/authentications/{'9' * 5000}/bc/companies")

    problem(response, 404, "not_found")
    assert fake_microsoft.bc.requests == []
