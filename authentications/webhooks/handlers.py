"""The registry the site's code uses to hear about changes in Business Central.

    from authentications.sdk import change_notifications

    @change_notifications.on("customers")
    def customer_changed(change):
        if change.is_resync:            # BC sent one `collection` for many changes
            for customer in change.records():
                ...
        else:
            ...                          # change.record_id, change.change_type, change.key

Handlers run in the task worker, never in the request that received the notification, at
least once and in order per record: `change.key` is stable across retries, so a handler
that may see a change twice can skip it. (Emails to people live in `mail`.)
"""

import importlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

_handlers: dict[str, list[Callable]] = defaultdict(list)
_imported = threading.Event()
_import_lock = threading.Lock()


@dataclass(frozen=True)
class Change:
    """One change, or for `collection` one resync, handed to a handler."""

    key: str  # The idempotency key.
    authentication_id: int
    company_id: str
    entity: str
    record_id: str  # Empty for a resync.
    change_type: str  # created, updated, deleted, or collection
    changed_at: datetime | None
    filter: str = ""  # For a resync: the OData $filter BC sent.

    @property
    def is_resync(self):
        return self.change_type == "collection"

    def client(self):
        """A BC client for the company this change happened in."""
        from authentications.connections.models import Authentication
        from authentications.connections.tokens import bc_client

        authentication = Authentication.objects.get(pk=self.authentication_id)
        return bc_client(authentication).company(self.company_id)

    def records(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Page through the records a resync covers (BC's filter), or this one record."""
        client = self.client()
        if self.is_resync:
            params = {"$filter": self.filter} if self.filter else None
            return client.iter(self.entity, params=params, page_size=page_size)
        return iter([client.get(f"{self.entity}({self.record_id})")])


def on(entity: str):
    """Register the decorated function for changes of `entity` (e.g. "customers")."""

    def register(handler):
        if handler not in _handlers[entity]:
            _handlers[entity].append(handler)
        return handler

    return register


def disconnect(entity: str, handler: Callable) -> None:
    if handler in _handlers.get(entity, []):
        _handlers[entity].remove(handler)


def handlers_for(entity: str) -> list[Callable]:
    _import_handler_modules()
    return list(_handlers.get(entity, []))


def _import_handler_modules():
    """Import BC_NOTIFICATION_HANDLERS once per process, so the worker knows the handlers."""
    if _imported.is_set():
        return
    with _import_lock:
        for module in settings.BC_NOTIFICATION_HANDLERS:
            importlib.import_module(module)
        _imported.set()
