"""Read-only displays of an authentication in the admin: what its stored state means to staff.

Each is a plain function of the authentication, listed by `AuthenticationAdmin` in
`list_display` or `readonly_fields`; markup comes from templates, never from Python.
"""

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html

from authentications.connections import credentials, cron, link_tokens, oauth
from authentications.connections.models import Authentication
from authentications.kit.fields import Undecryptable
from authentications.kit.formatting import EMPTY, when

# Shown for a row encrypted with a key no longer in FERNET_KEYS (see fields.Undecryptable).
CANNOT_DECRYPT = "Cannot decrypt: key missing"


def fragment(name, **context):
    """The HTML of templates/admin/authentications/authentication/_<name>.html."""
    return render_to_string(f"admin/authentications/authentication/_{name}.html", context)


def badge(state, label):
    """A coloured label; `state` is a CSS class of admin.css (a status, or "failing")."""
    return fragment("badge", state=state, label=label)


class StatusFilter(admin.SimpleListFilter):
    """By status, with the refused-credential choice worded for secrets and certificates
    alike (the stored label speaks of a secret; relabelling it would take a migration)."""

    title = "status"
    parameter_name = "status__exact"

    def lookups(self, request, model_admin):
        return [
            (
                status,
                credentials.ANY_CREDENTIAL_REFUSED
                if status == Authentication.Status.SECRET_INVALID
                else label,
            )
            for status, label in Authentication.Status.choices
        ]

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.display(description="Status", ordering="status")
def status_badge(obj):
    if obj.cannot_decrypt:
        return badge("failing", CANNOT_DECRYPT)
    return badge(obj.status, credentials.status_label(obj))


@admin.display(description="Client secret stored")
def secret_state(obj):
    if isinstance(obj.client_secret, Undecryptable):
        return CANNOT_DECRYPT
    return "stored" if obj.client_secret else "not set"


@admin.display(description="Credential expires", ordering="client_secret_expires_on")
def secret_days_left(obj):
    expires_on = credentials.expires_on(obj)
    if not expires_on:
        return None
    days = (expires_on - timezone.localdate()).days
    if days < 0:
        return badge("secret_invalid", "expired")
    label = f"{days} day{'s' if days != 1 else ''} left"
    if days <= max(cron.SECRET_REMINDER_DAYS):
        return badge("failing", label)
    return label


@admin.display(description="Redirect URI")
def redirect_uri(obj):
    """The URI to paste into Entra, with the steps that lead there."""
    return fragment(
        "redirect_uri",
        redirect_uri=oauth.redirect_uri(),
        service_to_service=obj is not None and obj.pk and not obj.is_user_impersonation,
        uses_certificate=obj is not None and obj.uses_certificate,
    )


@admin.display(description="Authorization URL")
def authorization_url(obj):
    """A fresh link to copy, for someone with a Business Central login to grant access."""
    if not link_tokens.link_available(obj):
        return "Fill in the app registration and BC URL, then save, to get the link."
    return link_fragment(obj, link_tokens.SIGN_IN, expected_user=obj.expected_user)


@admin.display(description="Admin consent URL")
def admin_consent_url(obj):
    """A fresh link to copy, for an Entra administrator of the customer's organisation."""
    if not link_tokens.link_available(obj, link_tokens.ADMIN_CONSENT):
        return "Fill in the client ID, secret and BC URL, then save, to get the link."
    return link_fragment(
        obj, link_tokens.ADMIN_CONSENT, tenant_id=obj.tenant_id, client_id=obj.client_id
    )


def link_fragment(obj, purpose, **context):
    """A fresh link for `purpose` in its fragment (_authorization_url or _admin_consent_url)."""
    url, expires_at = link_tokens.authorization_url(obj, purpose)
    return fragment(
        "authorization_url" if purpose == link_tokens.SIGN_IN else "admin_consent_url",
        url=url,
        expires=when(expires_at),
        max_age_days=link_tokens.max_age().days,
        **context,
    )


@admin.display(description="Access token")
def access_token_display(obj):
    if isinstance(obj.access_token, Undecryptable):
        return CANNOT_DECRYPT
    if not obj.access_token:
        return "none"
    return obj.masked_access_token


@admin.display(description="Token expires", ordering="access_token_expires_at")
def token_expiry(obj):
    expires = obj.access_token_expires_at
    if not expires or not obj.access_token:
        return None
    if expires <= timezone.now():
        return format_html("{} (expired)", when(expires))
    return when(expires)


@admin.display(description="Granted by", ordering="granted_by_upn")
def granted_by(obj):
    if not obj.granted_at:
        return None
    return format_html(
        "{} via {} on {}",
        obj.granted_by_display or "the app itself",
        obj.get_granted_via_display(),
        when(obj.granted_at),
    )


@admin.display(description="Last successful refresh", ordering="last_refreshed_at")
def last_refresh(obj):
    return when(obj.last_refreshed_at) if obj.last_refreshed_at else None


@admin.display(description="Sign-in valid until")
def sign_in_valid_until_display(obj):
    until = obj.sign_in_valid_until
    if until is None:
        return "no sign-in stored" if obj.is_user_impersonation else "not needed"
    return fragment("sign_in_valid_until", until=when(until))


@admin.display(description="Events")
def event_history(obj):
    events = obj.events.all()[:25]
    if not events:
        return "No events yet."
    rows = [
        (
            when(event.created_at),
            event.get_kind_display(),
            event.actor or EMPTY,
            event.detail,
        )
        for event in events
    ]
    return fragment("event_history", rows=rows)
