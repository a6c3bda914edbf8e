"""The fake Microsoft: Entra (and the BC API) behind one HTTPS server.

In-process for tests (`FakeMicrosoft(...).start()`), standalone for demos:

    python -m tests.fakes.microsoft --port 8443

prints the settings to point bcconnect at it and the app registration to type in.
"""

import argparse
import html.parser
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests

from .bc import FakeBusinessCentral
from .certs import make_certificates
from .entra import CLIENT_ID, CLIENT_SECRET, TENANT_DOMAIN, TENANT_ID, FakeEntra
from .http import FakeServer


class _FormParser(html.parser.HTMLParser):
    """Reads the first form of a page: its action and its named inputs."""

    def __init__(self):
        super().__init__()
        self.action, self.fields, self._done = "", {}, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.action and not self._done:
            self.action = attrs.get("action", "")
        elif tag == "input" and attrs.get("name") and not self._done:
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._done = True


def read_form(page):
    parser = _FormParser()
    parser.feed(page)
    return parser.action, parser.fields


class FakeMicrosoft:
    def __init__(self, *, cert_dir=None, host="127.0.0.1", port=0, parts=()):
        self.cert_dir = Path(cert_dir or tempfile.mkdtemp(prefix="fake-microsoft-"))
        self.ca_path, cert_path, key_path = make_certificates(self.cert_dir)
        self.entra = FakeEntra()
        self.parts = [self.entra, *parts]
        self.server = FakeServer(
            self.parts, cert_path=cert_path, key_path=key_path, host=host, port=port
        )
        self.entra.base_url = self.url
        for part in parts:
            if hasattr(part, "bind"):
                part.bind(self)

    @property
    def url(self):
        return self.server.url

    @property
    def connections_opened(self):
        return self.server.connections_opened

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop()
        for part in self.parts:
            if hasattr(part, "stop"):
                part.stop()

    def sign_in(self, authorize_url, *, username=None, accept=True):
        """Do what a person does on the sign-in page; return the fields Microsoft posts back.

        Real HTTP against the fake's own pages: the authorize page must accept the
        request (client, exact redirect URI, PKCE) before there is anything to click.
        """
        page = requests.get(authorize_url, verify=str(self.ca_path), timeout=10)
        if page.status_code != 200:
            raise AssertionError(f"authorize page refused the request: {page.text}")
        action, fields = read_form(page.text)
        fields["decision"] = "accept" if accept else "cancel"
        if username:
            fields["username"] = username
        answer = requests.post(action, data=fields, verify=str(self.ca_path), timeout=10)
        callback, posted = read_form(answer.text)
        return callback, posted


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the fake Microsoft (Entra + BC API).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert-dir", default=os.path.join(".demo", "certs"))
    parser.add_argument("--public-base-url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    parts = _standalone_parts()
    fake = FakeMicrosoft(cert_dir=args.cert_dir, host=args.host, port=args.port, parts=parts)
    redirect_uri = args.public_base_url.rstrip("/") + "/authentications/callback/"
    fake.entra.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uri)
    print(f"Fake Microsoft listening on {fake.url}", flush=True)
    print("Point bcconnect at it:", flush=True)
    print(f"  export BC_AUTHORITY_HOST={fake.url} BC_API_HOST={fake.url}", flush=True)
    print(f"  export REQUESTS_CA_BUNDLE={fake.ca_path.resolve()}", flush=True)
    print("App registration to enter in the admin:", flush=True)
    print(f"  Application (client) ID: {CLIENT_ID}", flush=True)
    print(f"  Directory (tenant) ID:   {TENANT_ID}  (or {TENANT_DOMAIN})", flush=True)
    print(f"  Client secret:           {CLIENT_SECRET}", flush=True)
    print(f"  Business Central URL:    {fake.url}/v2.0/{TENANT_ID}/Production/api/v2.0", flush=True)
    print(f"  Redirect URI registered: {redirect_uri}", flush=True)
    print("Users: jane@contoso.com (Jane Doe), john@contoso.com (John Smith)", flush=True)
    host = urlsplit(fake.url).hostname
    print(
        f"Your browser will warn about the certificate of {host}: it is the fake's own.", flush=True
    )
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass


def _standalone_parts():
    return [FakeBusinessCentral()]


if __name__ == "__main__":
    main()
