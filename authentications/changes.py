"""Changes to a connection that make whatever was under way before them obsolete.

Disconnecting, a new app registration, BC URL or type, and "Use this environment" each
revoke every Authorization URL and fence out the writes already under way: a refresh at
Microsoft or a sign-in not yet finished was started for the connection as it was, so it
must store nothing. One UPDATE does all of it, so no such write can land in between.
"""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .fields import Undecryptable
from .models import Authentication, Event, new_link_nonce

logger = logging.getLogger(__name__)

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
