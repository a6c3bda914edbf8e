"""What is deleted, and when, of a connection's history: finished sign-ins and old events.

Every press of an Authorization URL's button stores a pending sign-in (its encrypted PKCE
verifier included) and an event, and cron refreshes add events all the time: without a
purge, a public link is a way to fill the database. `refresh_tokens` purges on every run;
`purge_history` does the same on its own (both through `management.housekeeping`).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from authentications.connections.models import AuthorizationRequest, Event

GRANT_KINDS = (Event.Kind.SIGN_IN_GRANTED, Event.Kind.TOKEN_ACQUIRED)
# Events whose kind starts so describe the connection's credentials or links.
_CREDENTIAL_AND_LINK_PREFIXES = ("link_", "secret_", "credential_", "certificate_", "key_")


def purge(now, *, dry_run=False):
    """Delete (or with `dry_run`, count) finished sign-ins and expired events; (sign-ins,
    events)."""
    sign_ins = finished_sign_ins(now)
    return (sign_ins.count() if dry_run else sign_ins.delete()[0]), _purge_events(
        now, dry_run=dry_run
    )


def finished_sign_ins(now):
    """Sign-ins nobody can finish any more, once nothing needs them.

    A used one is kept for the sign-in lifetime, so the admin page the callback redirects
    to still finds it ("Access token received"); one that spent its link is kept as long
    as a link can live, so that link still says it was used rather than withdrawn.
    """
    ttl = timedelta(minutes=settings.BC_SIGN_IN_TTL_MINUTES)
    spent_link_still_explained = Q(
        started_via=AuthorizationRequest.Via.LINK,
        outcome=AuthorizationRequest.Outcome.GRANTED,
        created_at__gt=now - timedelta(days=settings.BC_LINK_MAX_AGE_DAYS),
    )
    abandoned = Q(used_at__isnull=True, expires_at__lte=now)
    used = Q(used_at__lte=now - ttl) & ~spent_link_still_explained
    return AuthorizationRequest.objects.filter(abandoned | used)


def event_cutoff(now):
    """Events before this moment may go; None when BC_EVENT_RETENTION_DAYS keeps them all."""
    days = settings.BC_EVENT_RETENTION_DAYS
    return now - timedelta(days=days) if days > 0 else None


def _purge_events(now, *, dry_run):
    cutoff = event_cutoff(now)
    if cutoff is None:
        return 0
    old = Event.objects.filter(created_at__lt=cutoff).order_by()
    total = 0
    for authentication_id in old.values_list("authentication_id", flat=True).distinct():
        expired = _expired_events(authentication_id, cutoff)
        total += expired.count() if dry_run else expired.delete()[0]
    return total


def _expired_events(authentication_id, cutoff):
    """An authentication's events before `cutoff`, except those of its current connection
    that say how it came to be: the latest grant and the credential and link events since."""
    events = Event.objects.filter(authentication_id=authentication_id)
    expired = events.filter(created_at__lt=cutoff)
    latest_grant = events.filter(kind__in=GRANT_KINDS).order_by("-created_at", "-id").first()
    if latest_grant is None:
        return expired.exclude(kind__in=credential_and_link_kinds())
    return expired.exclude(pk=latest_grant.pk).exclude(
        kind__in=credential_and_link_kinds(), created_at__gte=latest_grant.created_at
    )


def credential_and_link_kinds():
    return [kind for kind in Event.Kind.values if kind.startswith(_CREDENTIAL_AND_LINK_PREFIXES)]
