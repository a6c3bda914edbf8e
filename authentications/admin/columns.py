"""Columns of the admin's lists that stand for several fields, so that a list fits a
1366-px laptop with the columns people act on (status, attempts, error) in view."""

from django.contrib import admin
from django.utils.text import Truncator

# Characters of an error a list shows; the change page shows all of it.
ERROR_CHARS = 140


@admin.display(description="Change", ordering="entity")
def notification_change(obj):
    """What changed, e.g. "updated salesOrders 5d115c9c-...": three narrow fields in one."""
    return f"{obj.change_type} {obj.entity} {obj.record_id or '(collection)'}"


@admin.display(description="Last error")
def short_error(obj):
    return Truncator(obj.last_error).chars(ERROR_CHARS) or None


@admin.display(description="Authentication", ordering="authentication__name")
def authentication_name(obj):
    """The authentication's name, free to wrap (Django keeps a foreign key on one line)."""
    return str(obj.authentication)
