"""How a moment is written for people: one format for pages, messages, events and commands."""

from django.utils import timezone


def when(moment, *, seconds=False, zone=False):
    """`moment` in the site's time zone, e.g. "2025-01-31 14:05"; "—" when there is none.

    `zone` adds the zone's name, for text read away from the site (events, cron output).
    """
    if not moment:
        return "—"
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    if zone:
        pattern += " %Z"
    return timezone.localtime(moment).strftime(pattern)
