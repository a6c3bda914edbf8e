"""No secret on any endpoint page, download, command output, event or log line.

The whole endpoint feature is exercised with logging at DEBUG, across a token refresh, then
every client secret, access token and refresh token that ever existed is searched for in
what was produced, and so is the word "Bearer" (the Authorization header's value).
"""

import io
import logging

import pytest
from django.core.management import call_command

from authentications.connections.models import Event
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import confirmed_write, endpoint_url, expiring, rename_endpoint

pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = "/admin/authentications/endpoint/"
LOGGERS = ("authentications", "bcconnect", "requests", "urllib3", "django", "")


def test_no_secret_on_endpoint_pages_downloads_or_logs(
    admin_client, signed_in, make_endpoint, make_authentication, fake_microsoft, caplog
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    produced = []
    read = make_endpoint(signed_in, name="Customers", params=[["$top", "3"]])
    write = rename_endpoint(make_endpoint, signed_in, fake_microsoft)
    other = make_authentication(name="BC staging")
    expiring(signed_in, seconds=-1)  # The first call refreshes: old and new tokens exist.

    def keep(response):
        assert response.status_code < 500, response
        content = getattr(response, "streaming_content", None)
        produced.append(
            b"".join(content).decode() if content is not None else response.content.decode()
        )

    for url in (
        LIST_URL,
        LIST_URL + "add/",
        endpoint_url(read),
        endpoint_url(read, "test"),
        endpoint_url(read, "company"),
        endpoint_url(read, "export/csv"),
        endpoint_url(read, "export/csv") + "?excel=1",
        endpoint_url(read, "export/jsonl"),
        endpoint_url(write),
        endpoint_url(write, "test"),
    ):
        keep(admin_client.get(url))
    keep(
        admin_client.post(
            endpoint_url(write, "test"), confirmed_write(admin_client, write), follow=True
        )
    )
    fake_microsoft.bc.denied["jane@contoso.com"] = {"customers"}
    keep(admin_client.get(endpoint_url(read, "test")))
    keep(admin_client.get(endpoint_url(read, "export/csv"), follow=True))
    chosen = {"action": "point_at_another_authentication", "_selected_action": [read.pk]}
    for step in ("review", "confirm"):
        keep(
            admin_client.post(
                LIST_URL, {**chosen, "authentication": other.pk, "bc_move_step": step}
            )
        )
    keep(admin_client.post(LIST_URL, {"action": "duplicate", "_selected_action": [write.pk]}))
    out = io.StringIO()
    for args in (["--endpoint", write.name, "--json"], ["--endpoint", "Customers", "--all"]):
        try:
            call_command("bc", *args, stdout=out, stderr=out)
        except Exception as err:
            produced.append(str(err))
    produced += [out.getvalue(), caplog.text, *Event.objects.values_list("detail", flat=True)]

    text = "\n".join(produced)
    secrets = {
        CLIENT_SECRET,
        *fake_microsoft.entra.access_tokens,
        *fake_microsoft.entra.refresh_tokens,
    }
    assert len(fake_microsoft.entra.access_tokens) >= 2  # A refresh really happened.
    assert [secret for secret in secrets if secret in text] == []
    assert "Bearer" not in text
    assert "HTTP 200" in text and "Renamed" in text  # The pages really were produced.
