"""Changes to a connection that make whatever was under way before them obsolete.

Disconnecting, a new app registration, BC URL or type, and "Use this environment" each
revoke every Authorization URL and fence out the writes already under way: a refresh at
Microsoft or a sign-in not yet finished was started for the connection as it was, so it
must store nothing. One UPDATE does all of it, so no such write can land in between.

What Save in the admin goes on to (a sign-in, a token, or nothing) follows from the
fields it changed: `after_save`.
"""

import enum
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from authentications.connections import consent
from authentications.connections.models import Authentication, Event, new_link_nonce
from authentications.kit.fields import Undecryptable

logger = logging.getLogger(__name__)

# What a grant was made for: once one of these changes, the grant is for another connection.
# The type counts: an app-only token is no user's grant, and the reverse. So does the
# credential in use: switching between secret and certificate is a credential change.
CONNECTION_FIELDS = frozenset(
    {"kind", "client_id", "tenant_id", "client_secret", "credential_type", "base_url"}
)

TOKENS_FORGOTTEN = {
    "access_token": "",
    "refresh_token": "",
    "access_token_expires_at": None,
    "status": Authentication.Status.NOT_CONNECTED,
    "consecutive_failures": 0,
}


def change_connection(authentication, *, changes, actor, reason, event=Event.Kind.LINK_REVOKED):
    """Write `changes`, revoke every link and fence out earlier writes, in one UPDATE.

    The lease is left alone: a refresh already at Microsoft keeps it until it gives up
    (its fenced store writes nothing), so the refresh token is never sent twice at once.
    Returns False when the authentication no longer exists.
    """
    fenced = {
        # A secret no key could decrypt stays as stored: the key may yet come back.
        **{name: value for name, value in changes.items() if not isinstance(value, Undecryptable)},
        "link_nonce": new_link_nonce(),
        "generation": F("generation") + 1,
        "updated_at": timezone.now(),
    }
    with transaction.atomic():
        if not Authentication.objects.filter(pk=authentication.pk).update(**fenced):
            return False
        authentication.refresh_from_db(fields=list(fenced))
        authentication.record(event, actor=actor, detail=reason)
    logger.info("%s changed: %s", authentication, reason)
    return True


def disconnect(authentication, *, actor):
    """Forget the tokens and revoke every Authorization URL; the consent stays in Entra."""
    return change_connection(
        authentication,
        changes=TOKENS_FORGOTTEN,
        actor=actor,
        reason="Tokens deleted and Authorization URLs revoked.",
        event=Event.Kind.DISCONNECTED,
    )


def save_edited(authentication, *, fields, changed_fields, actor):
    """Store the `fields` a person edited, and only those; a change to the connection goes
    through `change_connection`.

    The token and lease columns of `authentication` were read when the edit began; writing
    them back would undo a refresh stored meanwhile (and lose the refresh token Entra just
    rotated).
    """
    if CONNECTION_FIELDS & set(changed_fields):
        change_connection(
            authentication,
            changes={name: getattr(authentication, name) for name in fields},
            actor=actor,
            reason="The app registration, credential, BC URL or type changed: earlier "
            "Authorization URLs no longer work.",
        )
    else:
        authentication.save(update_fields=[*fields, "updated_at"])
    authentication.refresh_from_db()  # What happens after Save is decided on what is stored.


class AfterSave(enum.Enum):
    SIGN_IN = "sign in with Microsoft"
    ACQUIRE_TOKEN = "acquire a token with client credentials"
    NOTHING = "nothing"


def after_save(authentication, *, changed_fields, continue_editing, may_sign_in):
    """What saving `authentication` (as now stored) goes on to, given the fields it changed.

    Service-to-service needs no person: a token is acquired at once when the connection
    changed or its token is due. A user-impersonation grant that no longer fits (the
    connection changed, or no valid token) is asked for again, when the person stays on
    the page ("Save", not "Save and close") and may start sign-ins.
    """
    connection_changed = bool(CONNECTION_FIELDS & set(changed_fields))
    if not authentication.is_user_impersonation:
        if not authentication.has_credentials():
            # Still waiting for its first consent: Save says so (the token request would).
            waiting = consent.awaiting_consent(authentication)
            return AfterSave.ACQUIRE_TOKEN if waiting and connection_changed else AfterSave.NOTHING
        due = not authentication.token_valid_for(settings.BC_TOKEN_SKEW_SECONDS)
        return AfterSave.ACQUIRE_TOKEN if connection_changed or due else AfterSave.NOTHING
    stale = connection_changed or not authentication.token_valid_for(0)
    if stale and continue_editing and may_sign_in:
        return AfterSave.SIGN_IN
    return AfterSave.NOTHING
