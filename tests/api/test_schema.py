"""The OpenAPI schema describes every operation and error; its docs work with no network."""

import re

import yaml
from django.contrib.staticfiles import finders

from authentications.api.schema import PROBLEM

SCHEMA = "/api/schema/"


def schema(client):
    response = client.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return (
        response.json() if "json" in response["Content-Type"] else yaml.safe_load(response.content)
    )


def test_every_operation_documents_its_errors_as_problems(client, db):
    paths = schema(client)["paths"]

    assert "/api/v1/authentications/{id}/token/" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403", "404", "429"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status == "default":
                    continue  # The proxy: BC's own answers, of any status and type.
                if status.startswith("2"):
                    assert response["content"], (path, status)  # JSON, CSV or JSON Lines.
                else:
                    assert PROBLEM in response.get("content", {PROBLEM: None}), (path, status)
            assert operation["security"] == [{"ApiKey": []}]


def test_the_schema_needs_no_key_and_shows_no_secret(client, make_key, connected_row):
    _, plaintext = make_key(connected_row)

    text = client.get(SCHEMA).content.decode()

    assert plaintext.partition(".")[2] not in text
    assert connected_row.access_token not in text and "client_secret" not in text


def test_the_docs_page_loads_everything_from_this_site(client, db):
    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r'"(/static/[^"]+)"', html)
    assert sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    assert all(
        finders.find(s.removeprefix("/static/")) for s in sources if s.startswith("/static/")
    )
    assert "/api/schema/" in html
