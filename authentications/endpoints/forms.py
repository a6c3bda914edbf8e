"""The endpoint admin's forms: key/value rows, and the rules a stored request must keep.

The path, query and headers are checked by the client that will send them
(`Endpoint.url` builds the real URL through `tokens.bc_client`, and `forbidden_header` is
the client's own header rule), so what the form accepts is exactly what can be sent.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.template.loader import render_to_string

from authentications.connections.models import Authentication
from authentications.endpoints.models import Endpoint, credential_param
from bcconnect.client import BusinessCentralRequestRefused, forbidden_header

NIL_COMPANY = "00000000-0000-0000-0000-000000000000"
BLANK_ROWS = 3
MAX_ROWS = 50
WRITES_WITH_BODY = (Endpoint.Method.POST, Endpoint.Method.PATCH)
CONDITIONAL = (Endpoint.Method.PATCH, Endpoint.Method.DELETE)


def as_rows(value):
    """`[[name, value], ...]` from stored rows, or from a dict that code stored."""
    pairs = value.items() if isinstance(value, dict) else value or []
    return [list(pair) for pair in pairs]


class KeyValueRowsWidget(forms.Widget):
    """Rows of two inputs, `<name>-key-<n>` and `<name>-value-<n>`, plus a few blank ones."""

    template_name = "admin/authentications/endpoint/key_value_rows.html"

    def __init__(self, *, key_label="Name", refuse=None, attrs=None):
        super().__init__(attrs)
        self.key_label = key_label
        self.refuse = refuse  # (name, value) -> reason: such a value is never rendered back.

    def format_value(self, value):
        rows = [row for row in as_rows(value) if row[0] or row[1]]
        if self.refuse:
            rows = [[name, "" if self.refuse(name, v) else v] for name, v in rows]
        return rows + [["", ""]] * BLANK_ROWS

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["key_label"] = self.key_label
        return context

    def render(self, name, value, attrs=None, renderer=None):
        """Render with the project's engine, which finds templates/ (the form renderer
        searches only Django's and the apps' own template folders); its output is safe."""
        return render_to_string(self.template_name, self.get_context(name, value, attrs))

    def value_from_datadict(self, data, files, name):
        rows = []
        for index in range(MAX_ROWS + BLANK_ROWS):
            key, value = data.get(f"{name}-key-{index}"), data.get(f"{name}-value-{index}")
            if key is None and value is None:
                break
            rows.append([(key or "").strip(), value or ""])
        return rows

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-key-0" not in data


def refuse_null_characters(value):
    """PostgreSQL stores no NUL in JSON (a 500 on save), and no request BC answers holds one:
    refuse it in every string of a stored value, keys included, as Django's text fields do."""
    refuse = ProhibitNullCharactersValidator()
    for text in _strings(value):
        refuse(text)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


class KeyValueRowsField(forms.Field):
    widget = KeyValueRowsWidget

    def to_python(self, value):
        rows = [row for row in value or [] if row[0] or row[1]]
        refuse_null_characters(rows)
        for key, _ in rows:
            if not key:
                raise ValidationError("Every row with a value needs a name.", code="no_name")
        if len(rows) > MAX_ROWS:
            raise ValidationError(f"At most {MAX_ROWS} rows.", code="too_many")
        return rows

    def has_changed(self, initial, data):
        return self.to_python(as_rows(initial)) != self.to_python(as_rows(data))


class OptionalJSONField(forms.JSONField):
    """JSON, or nothing: an empty body shows as an empty box, not as `null`."""

    def to_python(self, value):
        converted = super().to_python(value)
        refuse_null_characters(converted)
        return converted

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class EndpointForm(forms.ModelForm):
    params = KeyValueRowsField(
        label="Query parameters",
        required=False,
        widget=KeyValueRowsWidget(key_label="Parameter", refuse=credential_param),
        help_text=Endpoint._meta.get_field("params").help_text,
    )
    headers = KeyValueRowsField(
        required=False,
        widget=KeyValueRowsWidget(key_label="Header", refuse=forbidden_header),
        help_text=Endpoint._meta.get_field("headers").help_text,
    )
    body = OptionalJSONField(
        label="JSON body",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
        help_text=Endpoint._meta.get_field("body").help_text,
    )

    class Meta:
        model = Endpoint
        fields = [
            "name",
            "description",
            "authentication",
            "method",
            "path",
            "params",
            "headers",
            "body",
            "read_only_intent",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2, "cols": 80}),
            "path": forms.TextInput(attrs={"size": 90, "spellcheck": "false"}),
        }

    def clean_path(self):
        path = self.cleaned_data["path"].strip()
        if "://" in path or path.startswith("/"):
            raise ValidationError(
                "Give the path relative to the environment root, e.g. api/v2.0/companies "
                "(no https://host/…, no leading /).",
                code="absolute",
            )
        if "?" in path or "#" in path:
            # After a `#` the query rows would never be sent (the URL shown would lie); a
            # `?` in the path could not be replaced by call-time parameters.
            raise ValidationError(
                "Give the path without ? or #: put query options in the Query parameters "
                "rows below.",
                code="query_in_path",
            )
        return path

    def clean_params(self):
        for name, value in self.cleaned_data["params"]:
            reason = credential_param(name, value)
            if reason:
                raise ValidationError(
                    f"The query parameter {name[:60]!r} cannot be stored: {reason}.",
                    code="credential",
                )
        return self.cleaned_data["params"]

    def clean_headers(self):
        rows = self.cleaned_data["headers"]
        names = set()
        for name, value in rows:
            reason = forbidden_header(name, value)
            if reason:
                raise ValidationError(
                    f"The header {name!r} cannot be stored: {reason}.", code="forbidden"
                )
            if name.lower() in names:
                raise ValidationError(f"The header {name!r} is given twice.", code="twice")
            names.add(name.lower())
        return rows

    def clean(self):
        cleaned = super().clean()
        method = cleaned.get("method")
        if method and "body" in cleaned:
            self._check_body(method, cleaned["body"])
        if method in CONDITIONAL and "headers" in cleaned:
            if not any(name.lower() == "if-match" for name, _ in cleaned["headers"]):
                self.add_error(
                    "headers",
                    f"{method} needs an If-Match header: the entity's @odata.etag, or * to "
                    "overwrite whatever is there.",
                )
        if not self.errors:
            self._check_url(cleaned)
        return cleaned

    def _check_body(self, method, body):
        if body is not None and method not in WRITES_WITH_BODY:
            self.add_error("body", f"A {method} request has no body: leave it empty.")
        elif body is not None and not isinstance(body, dict | list):
            self.add_error("body", "The body must be a JSON object (or a list).")

    def _check_url(self, cleaned):
        """Build the URL the client would send, so its host and path rules decide.

        A company not chosen yet is stood in for by a nil id: the rules are about where
        the path leads, which a company id cannot change.
        """
        keep = self._keeps_company(cleaned)
        endpoint = Endpoint(
            name=cleaned.get("name", ""),
            authentication=cleaned["authentication"],
            method=cleaned["method"],
            path=cleaned["path"],
            params=cleaned.get("params") or [],
            company_id=self.instance.company_id if keep else "",
            company_name=self.instance.company_name if keep else "",
        )
        if endpoint.needs_company:
            endpoint.company_id, endpoint.company_name = NIL_COMPANY, "Company"
        try:
            endpoint.url()
        except BusinessCentralRequestRefused as err:
            self.add_error("path", err.message)

    def _keeps_company(self, cleaned):
        """A company belongs to one environment: another authentication drops it."""
        return "authentication" not in self.changed_data

    def save(self, commit=True):
        if not self._keeps_company(self.cleaned_data):
            self.instance.company_id = self.instance.company_name = ""
        return super().save(commit)


class MoveEndpointsForm(forms.Form):
    """Where the "Point at another authentication" action sends the selected endpoints."""

    authentication = forms.ModelChoiceField(
        queryset=Authentication.objects.all(), label="New authentication"
    )
