"""How a moment, or nothing, is written for people: one format for pages, messages, events and
commands, the one the Django admin uses for its own dates (the localized DATETIME_FORMAT)."""

from django.utils import formats, timezone

# What stands for "no value": the admin's empty_value_display too (set in admin/__init__),
# so that Django's empty cells and ours look the same.
EMPTY = "—"


def day(moment):
    """The date of `moment` in the site's time zone and Django's localized format, e.g. "Jan.
    31, 2025"; EMPTY when there is none."""
    if not moment:
        return EMPTY
    return formats.date_format(timezone.localtime(moment), "DATE_FORMAT")


def when(moment, *, zone=False):
    """`moment` in the site's time zone and Django's localized format, e.g. "Jan. 31, 2025,
    2:05 p.m."; EMPTY when there is none.

    `zone` adds the zone's name, for text read away from the site (events, cron output).
    """
    if not moment:
        return EMPTY
    local = timezone.localtime(moment)
    text = formats.date_format(local, "DATETIME_FORMAT")
    return f"{text} {local:%Z}" if zone else text


def sentence(text):
    """`text` ending with one period: a value may end with its own ("CRONUS USA, Inc.",
    "4:05 p.m."), and a second one reads as a typo."""
    text = str(text)
    return text if text.endswith(".") else text + "."
