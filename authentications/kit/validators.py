"""Input rules for the identifiers staff paste from Entra and BC.

They are strict on purpose: the tenant ends up inside the authority URL MSAL builds, and
the base URL decides where bearer tokens are sent.
"""

import re
import unicodedata
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from bcconnect.client import UnsafeUrlError, url_target

_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Control characters and line or paragraph separators: they break email headers and log lines.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


# Only the 8-4-4-4-12 form: uuid.UUID also takes "urn:…", "{…}" and hyphens anywhere, and a
# value that ends up in a URL path must be exactly what it looks like.
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def is_guid(value):
    return _GUID.fullmatch(str(value)) is not None


def validate_guid(value):
    if not is_guid(value):
        raise ValidationError(
            "Enter a GUID such as 8c3d1a4e-0000-4000-8000-1234567890ab (copy it from Entra).",
            code="guid",
        )


def validate_tenant(value):
    if is_guid(value) or _DOMAIN.match(str(value).lower()):
        return
    raise ValidationError(
        "Enter the Directory (tenant) ID as a GUID, or a verified domain such as "
        "contoso.onmicrosoft.com.",
        code="tenant",
    )


def allowed_api_hosts():
    hosts = [urlsplit(settings.BC_API_HOST).hostname, *settings.BC_API_ALLOWED_HOSTS]
    return {host.lower() for host in hosts if host}


def validate_base_url(value):
    """Refuse a BC URL the client would refuse, so none can ever be configured.

    The host is the one requests connects to (`url_target`), not urllib.parse's reading.
    """
    parts = urlsplit(str(value))
    try:
        host = url_target(value).host
    except UnsafeUrlError as err:
        raise ValidationError(
            f"This Business Central URL is refused: {err}.", code="unsafe"
        ) from None
    if parts.scheme != "https":
        raise ValidationError("The Business Central URL must start with https://.", code="https")
    if host not in allowed_api_hosts():
        raise ValidationError(
            f"Tokens are only sent to {', '.join(sorted(allowed_api_hosts()))}; "
            f"{host or 'this URL'} is not one of them (see BC_API_ALLOWED_HOSTS).",
            code="host",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError(
            "The Business Central URL must not contain credentials, a query or a fragment.",
            code="shape",
        )


def is_control_character(char):
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def validate_name(value):
    """Names end up in email subjects and log lines, where a line break does harm."""
    if any(is_control_character(char) for char in str(value)):
        raise ValidationError(
            "The name must not contain line breaks or other control characters.",
            code="control_characters",
        )
