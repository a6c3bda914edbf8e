"""Admin forms. The client secret is write-only: it is never rendered back."""

from django import forms

from authentications.connections import held_secrets
from authentications.connections.models import Authentication
from authentications.kit.fields import Undecryptable

HELD_SECRET_HELP = (
    "The secret you typed is kept from your last try (not shown, for ten minutes): leave "
    "blank to use it, or type another."
)


class AuthenticationForm(forms.ModelForm):
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The secret's <em>Value</em> (not its ID) from Entra &gt; Certificates &amp; "
        "secrets. Write-only: leave blank to keep the stored secret.",
    )

    # A one-time token for the secret typed before a validation error (see held_secrets).
    client_secret_hold = forms.CharField(required=False, widget=forms.HiddenInput)

    base_url = forms.URLField(
        label="Business Central URL",
        max_length=500,
        assume_scheme="https",
        help_text=Authentication._meta.get_field("base_url").help_text,
        widget=forms.URLInput(attrs={"size": 90}),
    )

    class Meta:
        model = Authentication
        fields = [
            "name",
            "kind",
            "credential_type",
            "client_id",
            "tenant_id",
            "client_secret",
            "client_secret_expires_on",
            "base_url",
            "expected_user",
        ]
        # GUIDs and UPNs shown whole, so staff can compare them with Entra at a glance.
        help_texts = {
            "tenant_id": "A GUID or verified domain from Entra &gt; Overview. Service-to-service "
            "only: leave it empty to onboard a customer's tenant through the Admin consent "
            "URL (sent to “organizations”); the consenting tenant is stored then.",
        }
        widgets = {
            "client_secret_expires_on": forms.DateInput(attrs={"type": "date"}),
            "client_id": forms.TextInput(attrs={"size": 40, "spellcheck": "false"}),
            "tenant_id": forms.TextInput(attrs={"size": 40, "spellcheck": "false"}),
            "expected_user": forms.TextInput(attrs={"size": 40}),
            "credential_type": forms.RadioSelect,
        }

    # The request whose session holds a secret typed before an error (set by the admin).
    request = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored_secret = self.instance.client_secret if self.instance.pk else ""
        if "client_secret" in self.fields and not self.instance.pk:
            self.fields["client_secret"].help_text = self.fields["client_secret"].help_text.replace(
                "leave blank to keep the stored secret", "never shown again once saved"
            )
        self._stored_credential = self.instance.credential_type
        self.initial["client_secret"] = ""
        # Forms that predate certificates post no credential: theirs stays as stored.
        if "credential_type" in self.fields:  # Not for a user who may only view it.
            self.fields["credential_type"].required = False

    def clean_client_id(self):
        return self.cleaned_data["client_id"].strip().lower()

    def clean_tenant_id(self):
        return self.cleaned_data["tenant_id"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        # Only service-to-service may wait for its tenant: the admin consent link sets it.
        user_impersonation = cleaned.get("kind") == Authentication.Kind.USER_IMPERSONATION
        if user_impersonation and "tenant_id" in cleaned and not cleaned["tenant_id"]:
            self.add_error(
                "tenant_id",
                "Enter the Directory (tenant) ID. Only a service-to-service authentication may "
                "leave it empty, for the admin consent link to fill in.",
            )
        return cleaned

    def clean_expected_user(self):
        return self.cleaned_data["expected_user"].strip()

    def clean_credential_type(self):
        return self.cleaned_data["credential_type"] or self.instance.credential_type

    def clean_client_secret(self):
        typed = self.cleaned_data.get("client_secret", "")
        if not typed and self._session is not None:
            typed = held_secrets.take(self._session, self.data.get("client_secret_hold"))
        if typed:
            self._typed_secret = typed
            return typed
        if self.cleaned_data.get("credential_type") == Authentication.Credential.CERTIFICATE:
            return self._stored_secret  # Not used while the certificate is; may stay empty.
        if self._stored_secret or isinstance(self._stored_secret, Undecryptable):
            # Blank keeps the stored secret; one no key decrypts stays as it is stored.
            return self._stored_secret
        raise forms.ValidationError("Enter the client secret Value copied from Entra.")

    @property
    def _session(self):
        return getattr(self.request, "session", None)

    def full_clean(self):
        """Validate; when the form comes back with errors, hold the typed secret for the
        retry (never in the page: the form carries a one-time token) and say so."""
        self._typed_secret = ""
        super().full_clean()
        if not self.is_bound or not self._errors or not self._typed_secret:
            return
        if self._session is None or "client_secret" not in self.fields:
            return
        self.data = self.data.copy()
        self.data["client_secret_hold"] = held_secrets.hold(self._session, self._typed_secret)
        self.fields["client_secret"].help_text = HELD_SECRET_HELP
        self["client_secret"].help_text = HELD_SECRET_HELP  # Bound fields copy it at creation.

    @property
    def changed_fields(self):
        """The fields whose stored value this form changes: a blank secret keeps the stored
        one, a secret typed again as stored changes nothing, and so does a missing credential."""
        changed = set(self.changed_data) - {"client_secret", "credential_type"}
        if self.cleaned_data.get("client_secret") != self._stored_secret:
            changed.add("client_secret")
        # A form that posts no credential keeps the stored one: that is no change.
        if self.cleaned_data.get("credential_type", self._stored_credential) != (
            self._stored_credential
        ):
            changed.add("credential_type")
        return changed
