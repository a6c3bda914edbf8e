"""Hits per time window, counted in the shared default cache: what every rate limit here uses.

The API keys' limits, the public pages' and the notification endpoint's all count with
`hit()`, so each of them costs one atomic increment per request once its window exists.

The default cache is the database's unless CACHE_URL names Redis, and Django's
`DatabaseCache.incr` is a read and a whole `set`: a `COUNT(*)` of the table (for culling), a
write transaction that reads the row again, and a new expiry (the cache's default timeout, so
a window longer than that needed one more write to put its expiry back). Two workers could
also both read N and write N + 1, letting a burst through. `DatabaseCache` below (the
default cache's backend, see settings.CACHES) increments exactly and keeps the expiry: on
PostgreSQL one UPDATE adds to the value where it lies; on SQLite a read, then one UPDATE
that lands only if the row still holds what was read. With Redis as the cache, `RedisCache`
below increments in one script where Django's checks first and increments second.
"""

import base64
import pickle
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends import db
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import connections, router, transaction
from redis.commands.core import Script
from redis.exceptions import RedisError

from authentications.kit.turns import one_writer

COMPARE_ATTEMPTS = 5  # Reads of a row other processes keep changing, before locking it.


# Seconds a caller is told to wait when the counters' cache did not answer.
UNAVAILABLE_RETRY_AFTER = 30


class CountingUnavailable(Exception):
    """The shared cache did not answer (Redis down or hung past its timeout): nothing can be
    counted, so the caller refuses the request (a 503) instead of letting it through
    uncounted or failing with a 500."""


def hit(name: str, seconds: int) -> int:
    """Count one hit on `name`, a counter that lives `seconds` (a window): the new count.

    The first hit of a window creates the counter with its expiry (a little past the window,
    so a clock a second off between hosts does not restart it); every later one increments.
    Raises CountingUnavailable when the cache is Redis and it did not answer.
    """
    try:
        try:
            return cache.incr(name)
        except ValueError:  # None yet in this window (or evicted): start it.
            if cache.add(name, 1, timeout=seconds + 5):
                return 1
            return cache.incr(name)  # Another process started it first.
    except RedisError as err:
        raise CountingUnavailable(f"The rate counters' cache did not answer: {err}") from None


class DatabaseCache(db.DatabaseCache):
    """Django's database cache, whose `incr` is atomic and keeps the entry's expiry."""

    # Pickle's protocol 0 writes an int as text ("I41\n.", base64-encoded in the column as
    # Django's cache stores every value), which PostgreSQL can read and add to in place.
    pickle_protocol = 0

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        connection = connections[router.db_for_write(self.cache_model_class)]
        # As Django's own has_key() compares: the database's clock is not asked.
        now = datetime.now(UTC) if settings.USE_TZ else datetime.now()
        expires = connection.ops.adapt_datetimefield_value(now.replace(microsecond=0))
        if connection.vendor == "postgresql":
            encoded = self._add_in_place(connection, key, delta, expires)
            if encoded is not None:
                return pickle.loads(base64.b64decode(encoded.encode()))  # noqa: S301
        elif not connection.in_atomic_block:
            value = self._add_compared(connection, key, delta, expires)
            if value is not None:
                return value
        return self._add_locked(connection, key, delta, expires)

    def _add_in_place(self, connection, key, delta, expires):
        """PostgreSQL: one UPDATE adds to an int where it lies, so the row is locked for one
        statement, not for three round trips (every call of one API key counts on it).

        Its commit does not wait for the WAL to reach the disk: a database crash may forget
        the last fraction of a second of counts, never corrupt them (asynchronous commit,
        the manual's "Reliability" chapter); set for this statement's own transaction only,
        never for one it is nested in. None when the entry is missing, expired or no int.
        """
        quick = (
            "" if connection.in_atomic_block else ", set_config('synchronous_commit', 'off', true)"
        )
        # The pickle as text, any byte that is no ASCII escaped (an int's never has one).
        text = "encode(decode(value, 'base64'), 'escape')"
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {connection.ops.quote_name(self._table)} SET value = encode(convert_to("  # noqa: S608 - names only
                f"'I' || (trim(BOTH E'I\\n.' FROM {text})::bigint + %s)::text || E'\\n.', "
                "'UTF8'), 'base64') "
                f"WHERE cache_key = %s AND expires > %s AND {text} ~ E'^I-?[0-9]{{1,18}}\\n\\\\.$' "
                f"RETURNING value{quick}",
                [delta, key, expires],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def _add_compared(self, connection, key, delta, expires):
        """SQLite: read, then write the sum in one UPDATE that only lands where the row still
        holds what was read (compare and set); the database's write lock is held for that
        statement alone. In a transaction it was held from BEGIN to COMMIT, across three
        statements after each of which the thread may wait for the interpreter lock, while
        the other processes' writers polled for it with sleeps. This process's threads take
        turns first, so only another process can change the row in between: then it is read
        again. None after COMPARE_ATTEMPTS such changes (the locked path counts then).
        """
        with one_writer(), connection.cursor() as cursor:
            for _ in range(COMPARE_ATTEMPTS):
                read = self._read(cursor, key, expires)
                value, encoded = self._added(read, delta)
                if self._write(cursor, key, encoded, was=read):
                    return value
        return None

    def _add_locked(self, connection, key, delta, expires):
        """Read, add and write back in one transaction that holds the row (any value).

        On SQLite the transaction holds the write lock from BEGIN (transaction_mode
        IMMEDIATE in settings), and this process's threads take turns for it first.
        """
        with (
            one_writer(),
            transaction.atomic(using=connection.alias),
            connection.cursor() as cursor,
        ):
            read = self._read(cursor, key, expires, lock=True)
            value, encoded = self._added(read, delta)
            self._write(cursor, key, encoded)
        return value

    def _read(self, cursor, key, expires, *, lock=False):
        """The entry's value as stored (the cache's encoding), if it has not expired;
        `lock`: hold its row until the transaction ends, where the database can."""
        ops = cursor.db.ops
        quote = ops.quote_name
        locked = " FOR UPDATE" if lock and cursor.db.features.has_select_for_update else ""
        cursor.execute(
            f"SELECT {quote('value')} FROM {quote(self._table)} "  # noqa: S608 - names only
            f"WHERE {quote('cache_key')} = %s AND {quote('expires')} > %s{locked}",
            [key, expires],
        )
        row = cursor.fetchone()
        if row is None:
            raise ValueError(f"Key '{key}' not found")
        return ops.process_clob(row[0])

    def _write(self, cursor, key, encoded, *, was=None):
        """Store `encoded` as the entry's value (only where it still holds `was`, if given):
        whether a row was written."""
        quote = cursor.db.ops.quote_name
        table, value = quote(self._table), quote("value")
        sql = f"UPDATE {table} SET {value} = %s WHERE {quote('cache_key')} = %s"  # noqa: S608
        params = [encoded, key]
        if was is not None:
            sql += f" AND {value} = %s"
            params.append(was)
        cursor.execute(sql, params)
        return cursor.rowcount == 1

    def _added(self, encoded, delta):
        """(value + delta, its encoding) for the cache's own encoding of a value, as
        Django's DatabaseCache writes (and reads) it."""
        value = pickle.loads(base64.b64decode(encoded.encode())) + delta  # noqa: S301
        return value, base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")


# Runs whole in Redis, nothing between its commands: INCRBY only where the key exists.
_INCR_IF_EXISTS = Script(
    None,  # Called with each cache client; a bytes script needs no client to hash it.
    b"if redis.call('EXISTS', KEYS[1]) == 1 then "
    b"return redis.call('INCRBY', KEYS[1], ARGV[1]) end return false",
)


class RedisCache(DjangoRedisCache):
    """Django's Redis cache, whose `incr` is one atomic command that never makes a key.

    Django's sends EXISTS, then INCRBY: two round trips per counted request, and a counter
    that expires between the two is made again by INCRBY with no expiry, which Redis then
    keeps for ever. One script does both in Redis at once.
    """

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(key, write=True)
        value = _INCR_IF_EXISTS(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value
