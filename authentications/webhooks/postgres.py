"""The inbox's statements on PostgreSQL: a fixed number per POST, whatever its size.

Each takes its many values as one JSON text parameter, unpacked by the server
(`json_array_elements`): the statement's text never changes with the number of rows, so the
server plans it once per connection, and the client quotes one string instead of building
an array literal per column (psycopg's list dumping, quoted value by value, cost 3 ms of
every 100-item POST). JSON keeps any text exactly, which an array literal would have to
escape. `inbox` chooses these on PostgreSQL; SQLite gets portable SQL there.
"""

import json

from django.db import connection

from authentications.webhooks.models import ChangeNotification, Subscription


def known_keys(keys):
    """The keys among `keys` already stored (BC's retries of what we have)."""
    table = _table(ChangeNotification)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT "key" FROM {table} '  # noqa: S608 - names are constants
            'WHERE "key" = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))',
            [json.dumps(keys)],
        )
        return {key for (key,) in cursor.fetchall()}


def insert(rows, *, status, received_at):
    """Insert `rows` (the inbox's verified items), in their order, skipping a key stored
    meanwhile by another POST."""
    values = [row.columns(_iso) for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(ChangeNotification)} "  # noqa: S608 - names are constants
            '("subscription_id", "key", "record_key", "entity", "record_id", "change_type", '
            '"changed_at", "resource", "status", "attempts", "last_error", "received_at") '
            "SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, r->>4, r->>5, "
            "(r->>6)::timestamptz, r->>7, %s, 0, '', %s "
            "FROM json_array_elements(%s::json) WITH ORDINALITY AS t(r, n) ORDER BY n "
            'ON CONFLICT ("key") DO NOTHING',
            [status, received_at, json.dumps(values, ensure_ascii=False)],
        )


def count(counts, heard):
    """Add each subscription's counts: {pk: (taken, wrong_state, malformed)}.

    Two statements for any number of subscriptions: lock the rows in key order (so two POSTs
    never wait on each other's rows crosswise), then one UPDATE from the JSON.
    """
    table = _table(Subscription)
    pks = sorted(counts)
    values = [[pk, *counts[pk]] for pk in pks]
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT 1 FROM {table} WHERE "id" = ANY(ARRAY('  # noqa: S608 - names only
            'SELECT json_array_elements_text(%s::json)::bigint)) ORDER BY "id" FOR UPDATE',
            [json.dumps(pks)],
        )
        cursor.execute(
            f"UPDATE {table} AS s "  # noqa: S608 - names are constants
            "SET notifications_received = s.notifications_received + c.taken, "
            "notifications_dropped = s.notifications_dropped + c.wrong_state, "
            "notifications_malformed = s.notifications_malformed + c.malformed, "
            "last_notification_at = CASE WHEN c.taken > 0 THEN %s::timestamptz "
            "ELSE s.last_notification_at END "
            "FROM (SELECT (v->>0)::bigint AS id, (v->>1)::int AS taken, "
            "(v->>2)::int AS wrong_state, (v->>3)::int AS malformed "
            "FROM json_array_elements(%s::json) AS v) AS c WHERE s.id = c.id",
            [heard, json.dumps(values)],
        )


def _iso(moment):
    return moment.isoformat() if moment else None


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)
