"""The key check's one statement: a key by its prefix and, when the call names an
authentication, that authentication's columns if the key may use it.

Every API call reads its key, and the hot ones (a token hand-out, a proxied request) also
read the authentication they name. Written out as one statement they cost one round trip
to the database instead of two, and none of the ORM's query building, which took longer
than the database's answer: in-process on PostgreSQL, building the key read and the
permission join cost 0.43 and 0.68 ms a call against 0.18 ms for the statement sent as is.
Each round trip also costs the thread a wait for the interpreter lock when it comes back,
which is what a loaded worker feels most.
"""

import threading

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.sql import Query

from authentications.api.models import ApiKey
from authentications.connections.models import Authentication


def read(prefix, authentication=None):
    """(key, found): the key whose prefix this is (None if there is none, then found is
    None too) and, if `authentication` is (pk, fields), that authentication with only
    `fields` loaded when the key may use it (None when it may not, or there is none: the
    same answer, so a caller cannot tell which authentications exist).

    The key is returned whatever its state: revoked, expired and wrong keys are the
    caller's to refuse (`keys.find_key`).
    """
    pk, names = authentication or (None, ())
    statement = _statement(tuple(names))
    params = [prefix] if not names else [statement.in_range(pk), prefix]
    with statement.connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, None
    return statement.instances(row)


class _Statement:
    """The SQL, fields and converters of one read, made once per thread and connection:
    quoting twenty names and finding each column's converters cost more than the rest of
    the read's Python."""

    def __init__(self, connection, names):
        self.connection = connection
        quote = connection.ops.quote_name
        self.key_fields = ApiKey._meta.concrete_fields
        self.found_fields = _with_pk(Authentication, names)
        selected = [f"k.{quote(field.column)}" for field in self.key_fields]
        selected += [f"a.{quote(field.column)}" for field in self.found_fields]
        sql = f"SELECT {', '.join(selected)} FROM {quote(ApiKey._meta.db_table)} k"  # noqa: S608
        if self.found_fields:
            sql += f" LEFT JOIN {quote(Authentication._meta.db_table)} a ON {_may_use(quote)}"
        self.sql = sql + f" WHERE k.{quote(ApiKey._meta.get_field('prefix').column)} = %s"
        columns = [f.get_col("k") for f in self.key_fields]
        columns += [f.get_col("a") for f in self.found_fields]
        # The converters a raw() query applies: JSON decoded, datetimes parsed on SQLite,
        # encrypted columns decrypted.
        self.compiler = connection.ops.compiler("SQLCompiler")(Query(None), connection, None)
        self.converters = self.compiler.get_converters(columns)
        pk_type = Authentication._meta.pk.get_internal_type()
        self.pk_range = connection.ops.integer_field_range(pk_type)

    def in_range(self, pk):
        """`pk` as a number, or None (which finds nothing) when the column cannot hold it: as
        the ORM does, a number out of range is one that does not exist, not a database
        error."""
        try:
            number = int(pk)
        except ValueError:  # Past Python's 4,300 digits (the proxy's URL takes any number).
            return None
        low, high = self.pk_range
        return number if low <= number <= high else None

    def instances(self, row):
        """(key, found or None) from one row, its values as the ORM would load them."""
        if self.converters:
            row = next(self.compiler.apply_converters([row], self.converters))
        alias, count = self.connection.alias, len(self.key_fields)
        key = ApiKey.from_db(alias, [f.attname for f in self.key_fields], row[:count])
        if not self.found_fields or row[count] is None:
            return key, None
        names = [f.attname for f in self.found_fields]
        return key, Authentication.from_db(alias, names, row[count:])


_made = threading.local()


def _statement(names):
    """This thread's statement for `names` on its current connection (tests and
    override_settings may give a thread another one)."""
    current = connections[DEFAULT_DB_ALIAS]
    made = _made.__dict__.setdefault("statements", {})
    statement = made.get(names)
    if statement is None or statement.connection is not current:
        statement = made[names] = _Statement(current, names)
    return statement


def usable_authentication(key, pk, fields):
    """The authentication `pk` with only `fields` loaded if `key` may use it, else None.

    Answered from the key check when it read this authentication along (`find_key`'s
    `authentication`); read now otherwise.
    """
    along = getattr(key, "read_along", None)
    if along is not None and along[0] == (pk, tuple(fields)):
        return along[1]
    return read(key.prefix, (pk, fields))[1]


def _may_use(quote):
    """The join condition: the authentication named (the first parameter), if the key may
    use every authentication or was given this one."""
    through = ApiKey._meta.get_field("authentications").remote_field.through._meta
    key_id, found_id = quote(ApiKey._meta.pk.column), quote(Authentication._meta.pk.column)
    given = (
        f"SELECT 1 FROM {quote(through.db_table)} t "  # noqa: S608 - names only
        f"WHERE t.{quote(through.get_field('apikey').column)} = k.{key_id} "
        f"AND t.{quote(through.get_field('authentication').column)} = a.{found_id}"
    )
    everything = quote(ApiKey._meta.get_field("all_authentications").column)
    return f"a.{found_id} = %s AND (k.{everything} OR EXISTS ({given}))"


def _with_pk(model, names):
    """The fields named and the primary key (an instance cannot be made without it), in
    the model's order, which is the order `Model.from_db` takes values in."""
    if not names:
        return []
    wanted = {*names, model._meta.pk.name}
    return [field for field in model._meta.concrete_fields if field.name in wanted]
