"""A client secret typed into a form that came back with errors, held for the retry.

The secret is never echoed into the page: the form carries a random one-time token in a
hidden field, and the session (stored server-side) holds the secret encrypted with the
project's Fernet keys, for a few minutes. Using the token spends it.
"""

import secrets

from cryptography.fernet import InvalidToken
from django.views.decorators.debug import sensitive_variables

from authentications.connections.models import Authentication

SESSION_KEY = "bcconnect_held_secrets"
TTL_SECONDS = 10 * 60
MAX_HELD = 5  # Per session: a few tabs' worth.


def _fernet():
    return Authentication._meta.get_field("client_secret").fernet


@sensitive_variables("secret")
def hold(session, secret):
    """Keep `secret` for one retry; the token to put in the form."""
    token = secrets.token_urlsafe(24)
    held = dict(session.get(SESSION_KEY) or {})
    while len(held) >= MAX_HELD:
        held.pop(next(iter(held)))
    held[token] = _fernet().encrypt(secret.encode()).decode()
    session[SESSION_KEY] = held
    return token


def take(session, token):
    """The secret held under `token`, once, if it is younger than TTL_SECONDS; else ""."""
    held = dict(session.get(SESSION_KEY) or {})
    ciphertext = held.pop(str(token or ""), None) if isinstance(token, str) else None
    if ciphertext is None:
        return ""
    session[SESSION_KEY] = held
    try:
        return _fernet().decrypt(ciphertext.encode(), ttl=TTL_SECONDS).decode()
    except (InvalidToken, TypeError, ValueError):
        return ""


def peek(session, token):
    """Whether a secret is held under `token` (for the help text), without spending it."""
    return isinstance(token, str) and token in (session.get(SESSION_KEY) or {})
