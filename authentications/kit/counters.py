"""Hits per time window, counted in the shared default cache: what every rate limit here uses.

The API keys' limits, the public pages' and the notification endpoint's all count with
`hit()`, so each of them costs one atomic increment per request once its window exists.

The default cache is the database's unless CACHE_URL names Redis, and Django's
`DatabaseCache.incr` is a read and a whole `set`: a `COUNT(*)` of the table (for culling), a
write transaction that reads the row again, and a new expiry (the cache's default timeout, so
a window longer than that needed one more write to put its expiry back). Two workers could
also both read N and write N + 1, letting a burst through. `DatabaseCache` below (the
default cache's backend, see settings.CACHES) increments instead in one short transaction
that locks the row, and keeps the expiry: exact across processes, and a third of the
database work. Redis's INCR is atomic and keeps the TTL already.
"""

import base64
import pickle
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends import db
from django.db import connections, router, transaction


def hit(name: str, seconds: int) -> int:
    """Count one hit on `name`, a counter that lives `seconds` (a window): the new count.

    The first hit of a window creates the counter with its expiry (a little past the window,
    so a clock a second off between hosts does not restart it); every later one increments.
    """
    try:
        return cache.incr(name)
    except ValueError:  # None yet in this window (or evicted): start it.
        if cache.add(name, 1, timeout=seconds + 5):
            return 1
        return cache.incr(name)  # Another process started it first.


class DatabaseCache(db.DatabaseCache):
    """Django's database cache, whose `incr` is atomic and keeps the entry's expiry."""

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        quote = connection.ops.quote_name
        table, key_column = quote(self._table), quote("cache_key")
        # As Django's own has_key() compares: the database's clock is not asked.
        now = datetime.now(UTC) if settings.USE_TZ else datetime.now()
        expires = connection.ops.adapt_datetimefield_value(now.replace(microsecond=0))
        # On SQLite the transaction holds the write lock from BEGIN (transaction_mode
        # IMMEDIATE in settings); elsewhere the row lock serializes the increments.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        # On PostgreSQL a counter's commit need not wait for the WAL to reach the disk: a
        # database crash may forget the last fraction of a second of counts, never corrupt
        # them (asynchronous commit, the PostgreSQL manual's "Reliability" chapter). Set
        # for this transaction only, never for one it would be nested in.
        quick = connection.vendor == "postgresql" and not connection.in_atomic_block
        commit = "set_config('synchronous_commit', 'off', true), " if quick else ""
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {commit}{quote('value')} FROM {table} "  # noqa: S608 - names only
                f"WHERE {key_column} = %s AND {quote('expires')} > %s{lock}",
                [key, expires],
            )
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            # The cache's own row, written as Django's DatabaseCache writes (and reads) it.
            encoded = connection.ops.process_clob(row[-1])
            value = pickle.loads(base64.b64decode(encoded.encode()))  # noqa: S301
            value += delta
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            cursor.execute(
                f"UPDATE {table} SET {quote('value')} = %s WHERE {key_column} = %s",  # noqa: S608
                [encoded, key],
            )
        return value
