"""Fuzz the endpoint doors: the admin's add/change form and the CSV/JSON Lines downloads.

Hypothesis sends thousands of generated requests at each door (STRESS_FUZZ_REQUESTS per
door: tests.helpers.FUZZ_REQUESTS): hostile form fields and object ids; hostile query strings,
and hostile answers from the fake BC (odd JSON, HTML, errors, half emoji, a nextLink to
another host). Each answer must be a page, a redirect or a whole download (never a 500),
a refused request changes nothing stored, and no answer holds a secret. Answers that the
client retries (cut bodies, 429, 503) are left to the unit tests: each retry sleeps.
"""

import json
import time

import pytest
from django.http import StreamingHttpResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authentications.endpoints.models import Endpoint, WriteConfirmation
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import FUZZ_REQUESTS, endpoint_url, plant_tokens

from .conftest import reports

pytestmark = [pytest.mark.stress, pytest.mark.django_db]

# Requests per door. A refused admin form is a whole admin page (about 25 ms here) and a
# download a round trip to the fake BC (about 12 ms).
FORM_REQUESTS = DOWNLOAD_REQUESTS = FUZZ_REQUESTS
PER_EXAMPLE = 5  # Requests per generated example: hypothesis's own cost is paid once.


def fuzz_settings(requests):
    return settings(
        max_examples=max(1, requests // PER_EXAMPLE),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


ADD_URL = "/admin/authentications/endpoint/add/"

# What a request can carry: UTF-8 text (a lone surrogate cannot cross HTTP; its bytes arrive
# as invalid UTF-8, sent below as percent-escapes).
nasty = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    st.sampled_from(
        [
            "",
            "\x00",
            "%ED%A0%BD",
            "%FF%FE",
            "<script>alert(1)</script>",
            "../../Sandbox/api/v2.0/companies",
            "%2e%2e/%2e%2e/x",
            "https://evil.example/x",
            "//evil.example/x",
            "api/v2.0/companies({company})/customers",
            "api/v2.0/companies({company})/customers?$top=1#",
            "ODataV4/Company('{company_name}')/Customer_Card",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
            '{"displayName": "x"}',
            "[1, 2",
            "A" * 5000,
            "\r\nX-Injected: 1",
        ]
    ),
)
field_names = st.sampled_from(
    [
        "name",
        "description",
        "authentication",
        "method",
        "path",
        "body",
        "read_only_intent",
        "params-key-0",
        "params-value-0",
        "params-key-1",
        "params-value-1",
        "headers-key-0",
        "headers-value-0",
        "headers-key-60",
        "_save",
        "_continue",
    ]
)
methods = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "get", "TRACE", ""])
object_ids = st.one_of(
    st.just(None),  # The real endpoint.
    st.sampled_from(["0", "-1", "999999", "x", "1%2F..", "%00", "1 OR 1=1", "9" * 30]),
)


def form_requests():
    """One admin form POST: plausible fields with hostile values, sometimes valid."""
    fields = st.dictionaries(field_names, nasty, max_size=10)
    return st.tuples(
        fields,
        methods,
        st.booleans(),  # With the real authentication's id.
        st.sampled_from(["add", "change"]),
        object_ids,
    )


def snapshot():
    """The stored endpoints and confirmations, cheaply compared."""
    endpoints = list(Endpoint.objects.order_by("pk").values_list())
    return endpoints, WriteConfirmation.objects.count()


def assert_no_secret(text, authentication):
    for secret in (
        authentication.access_token,
        authentication.refresh_token,
        CLIENT_SECRET,
        authentication.client_secret,
    ):
        assert secret not in text


@pytest.fixture
def lean_pages(monkeypatch):
    """Pages rendered as in production: without the test runner's per-template signal
    (pytest-django instruments every render for assertTemplateUsed) and the admin's
    navigation sidebar, which repeats the app list on every page. Both only cost time."""
    from django.contrib import admin
    from django.template import Template

    original = getattr(Template, "_original_render", None)
    if original is not None:
        monkeypatch.setattr(Template, "_render", original)
    monkeypatch.setattr(admin.site, "enable_nav_sidebar", False)


@pytest.fixture
def door(admin_client, make_endpoint, make_authentication, fake_microsoft, lean_pages):
    authentication = plant_tokens(fake_microsoft, make_authentication(name="BC production"))
    endpoint = make_endpoint(authentication, name="Customers", params=[["$top", "3"]])
    return admin_client, authentication, endpoint


def _report(door_name, sent, started):
    elapsed = time.perf_counter() - started
    reports.append(
        f"endpoint fuzz, {door_name}: {sent} requests in {elapsed:.1f} s "
        f"({sent / elapsed:.0f}/s), no 500, nothing stored from a refusal, no secret"
    )


def test_the_endpoint_form_refuses_cleanly(door):
    client, authentication, endpoint = door
    sent, started = [0], time.perf_counter()

    @fuzz_settings(FORM_REQUESTS)
    @given(st.lists(form_requests(), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def fuzz(batch):
        for fields, method, real_authentication, view, object_id in batch:
            data = {"method": method, **fields}
            if real_authentication:
                data["authentication"] = str(authentication.pk)
            url = ADD_URL
            if view == "change":
                url = f"/admin/authentications/endpoint/{object_id or endpoint.pk}/change/"
            before = snapshot()
            response = client.post(url, data)
            sent[0] += 1
            assert response.status_code in (200, 302, 404), response.status_code
            assert_no_secret(response.content.decode(), authentication)
            if response.status_code == 302:  # Saved: put things back for the next one.
                _restore(endpoint, before)
            else:
                assert snapshot() == before

    fuzz()
    assert sent[0] >= FORM_REQUESTS
    _report("admin endpoint form", sent[0], started)


def _restore(endpoint, before):
    Endpoint.objects.exclude(pk=endpoint.pk).delete()
    original = Endpoint.objects.filter(pk=endpoint.pk)
    fields = [f.attname for f in Endpoint._meta.concrete_fields]
    (row,) = [row for row in before[0] if row[0] == endpoint.pk]
    original.update(**dict(zip(fields, row, strict=True)))


# --- the downloads ------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(["\ud83d", "=1+1", "@SUM(A1)", "\t-2", "a\r\nb", '"', "\u202e"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
rows = st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=4)
next_links = st.sampled_from(
    [
        "https://evil.example/steal?$skiptoken=1&access_token=x",
        "http://127.0.0.1/v2.0/x/Production/api/v2.0/companies",
        "//evil.example/x",
        "../../Sandbox/api/v2.0/companies",
        "not a url \x00",
        "",
    ]
)
answers = st.one_of(
    st.just(None),  # BC answers as itself.
    st.builds(lambda r: ("answer", {"value": r}), rows),
    st.builds(lambda r, link: ("answer", {"value": r, "@odata.nextLink": link}), rows, next_links),
    st.builds(lambda v: ("answer", v), json_values),
    st.just(("html",)),
    st.sampled_from([("status", code) for code in (400, 403, 404, 405, 409, 412, 500)]),
)
query = st.dictionaries(
    st.sampled_from(["raw", "excel", "format", "$top", "x", "next"]), nasty, max_size=3
)


def test_the_downloads_answer_whole_files_or_refuse_cleanly(door, fake_microsoft):
    client, authentication, endpoint = door
    sent, started = [0], time.perf_counter()
    requests = st.tuples(answers, st.sampled_from(["csv", "jsonl"]), query, object_ids)

    @fuzz_settings(DOWNLOAD_REQUESTS)
    @given(st.lists(requests, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def fuzz(batch):
        for answer, format, params, object_id in batch:
            fake_microsoft.bc.faults.clear()
            if answer is not None:
                fake_microsoft.bc.fail_next(answer)
            url = endpoint_url(endpoint, f"export/{format}")
            if object_id is not None:
                url = f"/admin/authentications/endpoint/{object_id}/export/{format}/"
            before = snapshot()
            response = client.get(url, params)
            sent[0] += 1
            _check_download(response, before, authentication)

    fuzz()
    assert sent[0] >= DOWNLOAD_REQUESTS
    assert fake_microsoft.bc.count("POST") + fake_microsoft.bc.count("PATCH") == 0
    _report("endpoint downloads", sent[0], started)


def _check_download(response, before, authentication):
    if isinstance(response, StreamingHttpResponse):
        text = b"".join(response.streaming_content).decode("utf-8")  # Whole, valid UTF-8.
        assert response.status_code == 200
        assert text == "" or text.endswith("\n")
        if response["Content-Type"].startswith("application/x-ndjson"):
            # JSON Lines are split at "\n" only: U+0085 and U+2028 may sit inside a string.
            for line in text.split("\n")[:-1]:
                json.loads(line)
    else:
        assert response.status_code in (302, 404), response.status_code
        text = response.content.decode()
        assert snapshot() == before  # A refused download stores nothing.
    assert_no_secret(text, authentication)
