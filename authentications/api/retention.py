"""The API's audit is kept as long as the other histories: BC_EVENT_RETENTION_DAYS."""

from datetime import timedelta

from django.conf import settings

from authentications.api.models import ApiCall

BATCH = 1_000  # Ids per DELETE: a busy key's year of calls never locks the table for long.


def purge(now, *, dry_run=False):
    """Delete (or count) the API calls older than the retention; 0 when it keeps them all."""
    days = settings.BC_EVENT_RETENTION_DAYS
    if days <= 0:
        return 0
    old = ApiCall.objects.filter(at__lt=now - timedelta(days=days)).order_by()
    if dry_run:
        return old.count()
    total = 0
    while ids := list(old.values_list("id", flat=True)[:BATCH]):
        total += ApiCall.objects.filter(id__in=ids).delete()[0]
    return total
