"""What is deleted, and when: finished sign-ins, old audit events, delivered notifications
and the task backend's finished result rows.

Every press of an Authorization URL's button stores a pending sign-in (its encrypted PKCE
verifier included) and an event, and cron refreshes add events all the time: without a
purge, a public link is a way to fill the database. Likewise every notification batch and
retry leaves a django-tasks-db result row that the backend never deletes. `refresh_tokens`
purges on every run; `purge_history` does the same on its own.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from authentications import notification_delivery
from authentications.models import AuthorizationRequest, Event
from authentications.subscription_models import RETENTION, ChangeNotification

BATCH_SIZE = 1_000  # Ids per DELETE: no statement locks or logs a whole table at once.
DELIVER_TASK = "authentications.change_tasks.deliver_records"

GRANT_KINDS = (Event.Kind.SIGN_IN_GRANTED, Event.Kind.TOKEN_ACQUIRED)
# Events whose kind starts so describe the connection's credentials or links.
_CREDENTIAL_AND_LINK_PREFIXES = ("link_", "secret_", "credential_", "certificate_", "key_")


class WorkerDied(Exception):
    """Recorded on a task result row whose worker stopped while running it (killed, OOM)."""


@dataclass(frozen=True)
class Purged:
    sign_ins: int
    events: int
    notifications: int = 0
    task_results: int = 0


def purge(*, now=None, dry_run=False):
    """Delete (or with `dry_run`, count) what is past its retention; close dead task rows."""
    now = now or timezone.now()
    sign_ins = finished_sign_ins(now)
    counts = [sign_ins.count() if dry_run else sign_ins.delete()[0]]
    counts.append(_purge_events(now, dry_run=dry_run))
    counts.append(_delete_in_batches(delivered_notifications(now), dry_run=dry_run))
    counts.append(prune_task_results(now, dry_run=dry_run))
    if not dry_run:
        close_dead_task_results(now)
    return Purged(*counts)


def delivered_notifications(now):
    """Delivered notifications past RETENTION (kept that long for the admin)."""
    return ChangeNotification.objects.filter(
        status=ChangeNotification.Status.DELIVERED, delivered_at__lt=now - RETENTION
    )


def _task_results():
    """django-tasks-db's result model, or None when another TASKS backend is in use."""
    if not apps.is_installed("django_tasks_db"):
        return None
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult


def prune_task_results(now, *, dry_run=False, batch_size=BATCH_SIZE):
    """Delete finished (succeeded or failed) task result rows older than RETENTION."""
    model = _task_results()
    if model is None:
        return 0
    old = model.objects.finished().filter(finished_at__lt=now - RETENTION)
    return _delete_in_batches(old, dry_run=dry_run, batch_size=batch_size)


def _delete_in_batches(queryset, *, dry_run, batch_size=BATCH_SIZE):
    if dry_run:
        return queryset.count()
    model, total = queryset.model, 0
    while ids := list(queryset.order_by().values_list("pk", flat=True)[:batch_size]):
        total += model.objects.filter(pk__in=ids).delete()[0]
    return total


def close_dead_task_results(now):
    """Mark failed the task rows left "running" by a worker that was killed.

    A row is dead once it started longer than BC_NOTIFICATION_CLAIM_SECONDS ago and, for a
    delivery task, none of its records is claimed right now (a long batch still working holds
    a live claim). A task still running after all simply records its own end over this.
    Returns how many were closed.
    """
    model = _task_results()
    if model is None:
        return 0
    from django_tasks_db.compat import TaskResultStatus

    started_before = now - notification_delivery.claim_duration()
    running = model.objects.running().filter(started_at__lt=started_before)
    dead = [
        row.pk for row in running.only("pk", "task_path", "args_kwargs") if not _alive(row, now)
    ]
    return model.objects.filter(pk__in=dead).update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path=f"{WorkerDied.__module__}.{WorkerDied.__qualname__}",
        traceback="The worker stopped while running this task (killed, out of memory or "
        "crashed); closed after BC_NOTIFICATION_CLAIM_SECONDS by the cron run.",
    )


def _alive(row, now):
    if row.task_path != DELIVER_TASK:
        return False
    record_keys = (row.args_kwargs.get("args") or [[]])[0]
    return ChangeNotification.objects.filter(
        record_key__in=record_keys,
        status=ChangeNotification.Status.DELIVERING,
        claimed_until__gte=now,
    ).exists()


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
