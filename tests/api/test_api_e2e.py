"""The API end to end: gunicorn as deployed, the fake Entra and the fake BC, real HTTP."""

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from authentications.api import keys
from authentications.api.models import ApiCall, ApiKey
from tests.helpers import expiring, fresh

LIST = "/api/v1/authentications/"


def with_key(plaintext):
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {plaintext}"
    return session


def test_keys_scopes_expiry_and_revocation_take_effect_on_the_next_request(
    served, make_key, tokens_planted, make_authentication, tmp_path
):
    other = make_authentication(name="Other")
    key, plaintext = make_key(tokens_planted, scopes=["tokens"])
    _, reader = make_key(tokens_planted, scopes=["bc.read"])
    session = with_key(plaintext)

    listed = session.get(served + LIST, timeout=10).json()
    assert [shown["name"] for shown in listed["results"]] == ["BC production"]
    token = session.post(f"{served}{LIST}{tokens_planted.pk}/token/", timeout=10)
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"
    assert token.json()["access_token"] == tokens_planted.access_token
    assert with_key(reader).post(f"{served}{LIST}{tokens_planted.pk}/token/").status_code == 403
    assert session.get(f"{served}{LIST}{other.pk}/", timeout=10).status_code == 404

    ApiKey.objects.filter(pk=key.pk).update(expiry_date="2000-01-01T00:00:00Z")
    expired = session.get(served + LIST, timeout=10)
    ApiKey.objects.filter(pk=key.pk).update(expiry_date=None)
    assert session.get(served + LIST, timeout=10).status_code == 200
    keys.revoke(key.prefix)
    revoked = session.get(served + LIST, timeout=10)

    for refused in (expired, revoked):
        assert refused.status_code == 401
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == "api_key_invalid"
    calls = list(ApiCall.objects.filter(key=key).values_list("status", flat=True))
    assert sorted(calls) == [200, 200, 200, 404]  # The 401s have no key to name.
    assert ApiCall.objects.filter(key=None, status=401).count() == 2
    audit = json.dumps(list(ApiCall.objects.values()), default=str)
    log = (tmp_path / "gunicorn.log").read_text()  # The server's stdout and stderr.
    for secret in (plaintext, plaintext.partition(".")[2], tokens_planted.access_token):
        assert secret not in audit and secret not in log


def test_the_rate_limit_holds_across_workers(served, make_key, connected_row):
    _, plaintext = make_key(connected_row, rate_limit="6/hour")

    # A new connection each time: gunicorn's two workers take turns accepting them.
    statuses = [with_key(plaintext).get(served + LIST, timeout=10).status_code for _ in range(10)]

    assert statuses == [200] * 6 + [429] * 4
    assert int(with_key(plaintext).get(served + LIST, timeout=10).headers["Retry-After"]) > 0


def test_fifty_callers_at_an_expired_token_cost_one_entra_request(
    served, make_key, tokens_planted, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])
    expiring(tokens_planted, seconds=-5)
    url = f"{served}{LIST}{tokens_planted.pk}/token/"

    def ask(_):
        answer = with_key(plaintext).post(url, timeout=60)
        return answer.status_code, answer.json().get("access_token")

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(ask, range(50)))

    assert {status for status, _ in answers} == {200}
    assert len({token for _, token in answers}) == 1
    assert fake_microsoft.entra.count("refresh_token") == 1
    assert answers[0][1] == fresh(tokens_planted).access_token


def raw_get(base, target, plaintext):
    """GET `target` exactly as written: no client normalises its dots or escapes."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", target, headers={"Authorization": f"Api-Key {plaintext}"})
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read())


def test_the_proxy_refuses_paths_out_of_the_base_url_and_sends_nothing(
    served, make_key, tokens_planted, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["bc.read"])
    base = f"/api/v1/authentications/{tokens_planted.pk}/bc/"

    for path in ("../../../x", "companies/%2e%2e/%2e%2e/x", "a%2F..%2F..%2Fx", "a\\..\\x",
                 "https://evil.example/x", "x@evil.example", "companies%252F..%252Fx"):  # fmt: skip
        status, body = raw_get(served, base + path, plaintext)
        assert (status, body["code"]) == (400, "path_refused"), path
    assert fake_microsoft.bc.requests == []


def test_paging_through_the_proxy_with_rewritten_next_links(
    served, make_key, tokens_planted, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["bc.read"])
    fake_microsoft.bc.company.generated = 1_000
    session = with_key(plaintext)
    company = fake_microsoft.bc.company.id
    url = f"{served}/api/v1/authentications/{tokens_planted.pk}/bc/companies({company})/customers"
    rows, pages = 0, 0
    while url:
        answer = session.get(url, headers={"Prefer": "odata.maxpagesize=150"}, timeout=30)
        assert answer.status_code == 200
        body = answer.json()
        rows, pages = rows + len(body["value"]), pages + 1
        url = body.get("@odata.nextLink")
        assert url is None or url.startswith(served)

    assert (rows, pages) == (1_000, 7)


def test_the_export_streams_through_the_api(
    served, make_key, tokens_planted, make_endpoint, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["endpoints"])
    fake_microsoft.bc.company.generated = 3_000
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number,displayName"]])

    with with_key(plaintext).get(
        f"{served}/api/v1/endpoints/{endpoint.pk}/export/?file=jsonl", stream=True, timeout=60
    ) as answer:
        assert answer.status_code == 200
        assert "Content-Length" not in answer.headers  # Streamed, not built whole.
        lines = [line for line in answer.iter_lines() if line]

    assert len(lines) == 3_000
    assert json.loads(lines[-1])["number"] == "C003000"
    audit = ApiCall.objects.get(path__contains="/export/")
    assert audit.status == 200 and audit.bytes > 100_000
