"""Endpoints: named Business Central calls that staff test and export, and code calls by name.

An endpoint is only a description of a request (method, path under the environment root,
query options, headers, body); sending it goes through `tokens.bc_client`, so retries, the
401 refresh, the concurrency cap and the host and path rules of the client all apply, and
the token can go nowhere its authentication could not send it.
"""

from urllib.parse import quote

from django.db import models
from django.utils import timezone

from authentications.kit.validators import is_guid, validate_name
from bcconnect.client import BusinessCentralClient, Params
from bcconnect.errors import BcconnectError
from bcconnect.headers import could_carry_credential, looks_like_credential

COMPANY_ID = "{company}"  # Replaced by the chosen company's id.
COMPANY_NAME = "{company_name}"  # Replaced by its name, quoted for an OData key.
READ_ONLY_INTENT = ("Data-Access-Intent", "ReadOnly")


class EndpointNotReady(BcconnectError):
    """The endpoint cannot be sent as stored (no company chosen for its path)."""


def credential_param(name, value):
    """Why the query row `name`=`value` may not be stored, or None.

    No credential in the query either: the rows are shown to anyone who may view the
    endpoint, and the whole URL to confirmation pages and BC's logs. OData's own options
    (`$filter`, ...) are exempt from the name rule, not from the value rule.
    """
    if not name.startswith("$") and could_carry_credential(name):
        return "its name suggests a credential; the client adds the bearer token itself"
    if looks_like_credential(str(value)):
        return "its value looks like a credential (an authorization scheme or a token)"
    return None


class Endpoint(models.Model):
    class Method(models.TextChoices):
        GET = "GET", "GET (read)"
        POST = "POST", "POST (create)"
        PATCH = "PATCH", "PATCH (change)"
        DELETE = "DELETE", "DELETE (delete)"

    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    description = models.TextField(blank=True)
    authentication = models.ForeignKey(
        "authentications.Authentication", on_delete=models.PROTECT, related_name="endpoints"
    )
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.GET)
    path = models.CharField(
        max_length=1000,
        help_text="Relative to the environment root (…/v2.0/&lt;tenant&gt;/&lt;environment&gt;/), "
        "e.g. api/v2.0/companies({company})/customers, "
        "api/&lt;publisher&gt;/&lt;group&gt;/&lt;version&gt;/companies({company})/…, or "
        "ODataV4/Company('{company_name}')/Customer_Card. {company} and {company_name} "
        "stand for the company chosen below.",
    )
    company_id = models.CharField("company ID", max_length=36, blank=True)
    company_name = models.CharField(max_length=250, blank=True)
    params = models.JSONField(
        "query parameters",
        default=list,
        blank=True,
        help_text="$filter, $select, $expand, $top, $orderby or your own; one per row.",
    )
    headers = models.JSONField(
        default=list,
        blank=True,
        help_text="Extra request headers; never credentials (the token is added for you). "
        "PATCH and DELETE need If-Match: the entity's @odata.etag, or * to overwrite.",
    )
    body = models.JSONField("JSON body", null=True, blank=True, help_text="For POST and PATCH.")
    read_only_intent = models.BooleanField(
        "read from a replica",
        default=True,
        help_text="GET only: sends Data-Access-Intent: ReadOnly, so BC may answer from a "
        "read-only replica and spare the main database.",
    )

    last_tested_at = models.DateTimeField("last test", null=True, blank=True)
    last_test_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_test_ms = models.PositiveIntegerField(null=True, blank=True)
    last_test_rows = models.PositiveIntegerField(null=True, blank=True)
    last_test_error = models.CharField(max_length=300, blank=True)
    # The last download from the admin: a streamed file cannot change its status once sent,
    # so an export that stopped early (or replaced characters) says so here as well.
    last_export_at = models.DateTimeField("last export", null=True, blank=True)
    last_export_rows = models.PositiveIntegerField(null=True, blank=True)
    last_export_complete = models.BooleanField(null=True, blank=True)
    last_export_note = models.CharField(max_length=300, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("run_endpoint", "Can export endpoints and test those that change data"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_read(self):
        return self.method == self.Method.GET

    # --- the request ------------------------------------------------------------------

    @property
    def needs_company(self):
        return (COMPANY_ID in self.path or COMPANY_NAME in self.path) and not self.company_id

    def resolved_path(self):
        """The path with the company filled in."""
        if self.needs_company:
            raise EndpointNotReady(
                f"“{self.name}” has {COMPANY_ID} or {COMPANY_NAME} in its path: choose its "
                "company first (Choose company on its page).",
                code="Endpoint_NoCompany",
            )
        if COMPANY_ID in self.path and not is_guid(self.company_id):
            # Only a GUID goes into the path raw: a company id stored by code (or listed by
            # a hostile server) cannot add a query, a fragment or a segment.
            raise EndpointNotReady(
                f"“{self.name}” has a company id that is not a GUID: choose its company again.",
                code="Endpoint_BadCompany",
            )
        path = self.path.replace(COMPANY_ID, self.company_id)
        name = quote(self.company_name.replace("'", "''"), safe="")
        return path.replace(COMPANY_NAME, name)

    def query(self, overrides=None):
        """The stored query options, with `overrides` replacing options of the same name.

        The admin stores rows (`[[name, value], ...]`, a name may repeat); code may store a
        dict.
        """
        overrides = {key: str(value) for key, value in (overrides or {}).items()}
        stored = self.params.items() if isinstance(self.params, dict) else self.params
        pairs = [(key, value) for key, value in stored if key not in overrides]
        pairs += list(overrides.items())
        for key, value in pairs:  # Stored by code, past the form: refused here, never shown.
            reason = credential_param(key, value)
            if reason:
                raise EndpointNotReady(
                    f"“{self.name}”: the query parameter {str(key)[:60]!r} is not sent: {reason}.",
                    code="Endpoint_CredentialParam",
                )
        return pairs

    def request_headers(self):
        headers = dict(self.headers)
        if self.is_read and self.read_only_intent:
            headers.setdefault(*READ_ONLY_INTENT)
        return headers

    def client(self) -> BusinessCentralClient:
        """The authentication's client, aimed at its environment root."""
        from authentications.connections.tokens import bc_client

        return bc_client(self.authentication).environment_client()

    def url(self, overrides: Params = None) -> str:
        """The whole URL this endpoint calls, checked by the client's rules (no network)."""
        return self.client()._url(self.resolved_path(), self.query(overrides))

    # --- calling it from code ---------------------------------------------------------

    def pages(self, *, page_size=None, prefetch=True, **overrides):
        """The answer page by page (`Page`s); GET endpoints only."""
        self._require_read()
        return self.client().pages(
            self.resolved_path(),
            self.query(overrides),
            page_size=page_size,
            headers=self.request_headers(),
            prefetch=prefetch,
        )

    def iter(self, *, prefetch=True, **overrides):
        """Every entity of a GET endpoint, across pages; `overrides` replace query options."""
        self._require_read()
        return self.client().iter(
            self.resolved_path(),
            self.query(overrides),
            headers=self.request_headers(),
            prefetch=prefetch,
        )

    def call(self, *, json=None, etag=None, **overrides):
        """Send the request once (`CallResult`); `json` replaces the stored body."""
        return self.client().call(
            self.method,
            self.resolved_path(),
            params=self.query(overrides),
            json=self.body if json is None else json,
            headers=self.request_headers(),
            etag=etag,
        )

    def _require_read(self):
        if not self.is_read:
            raise ValueError(f"{self.name} is a {self.method} endpoint: use call().")


class WriteConfirmation(models.Model):
    """One confirmation page shown for a write test: usable once, for the request it showed.

    The page posts its `nonce`; the write is sent only if the nonce is unused, was shown to
    the same person, and the endpoint would still send the request it showed
    (`fingerprint`: method, URL, headers, body, and the authentication's identity).
    Spending it is one conditional UPDATE, so two posts of one page cannot both send.
    `outcome` is what the result page shows (Post/Redirect/Get): a reload shows it again
    instead of sending the write again.
    """

    nonce = models.CharField(max_length=64, unique=True)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64)
    shown_to = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(null=True, blank=True)

    def __str__(self):
        return f"Confirmation of a {self.endpoint.method} test ({self.created_at:%Y-%m-%d %H:%M})"
