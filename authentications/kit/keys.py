"""Re-encrypting stored secrets with the first key in FERNET_KEYS (key rotation).

Reads the raw ciphertext so rows already on the current key are skipped, and works in
batches, each in its own transaction: safe to interrupt and to run again. A row no key
decrypts is left as it is and counted, so the run still rotates every other row and the
caller can say that an old key is missing.
"""

from dataclasses import dataclass

from django.db import connection, transaction

from authentications.kit.fields import encrypted_fields

BATCH_SIZE = 200


@dataclass
class RotationCount:
    model: str
    rows: int = 0
    rotated: int = 0
    undecryptable: int = 0


def rotate_encryption_keys(*, batch_size=BATCH_SIZE):
    """Re-encrypt every encrypted column still under an older key; one count per model."""
    fields_by_model = {}
    for field in encrypted_fields():
        fields_by_model.setdefault(field.model, []).append(field)
    return [_rotate_model(model, fields, batch_size) for model, fields in fields_by_model.items()]


def _rotate_model(model, fields, batch_size):
    count = RotationCount(model._meta.label)
    last_pk = None
    while True:
        with transaction.atomic():
            rows = _raw_rows(model, fields, after=last_pk, limit=batch_size)
            if not rows:
                return count
            lost = [row[0] for row in rows if not _all_decrypt(fields, row[1:])]
            stale = [
                row[0] for row in rows if row[0] not in lost and not _all_current(fields, row[1:])
            ]
            # Loading decrypts with any listed key; saving encrypts with the first one.
            for instance in model.objects.select_for_update().filter(pk__in=stale):
                instance.save(update_fields=[field.attname for field in fields])
            count.rows += len(rows)
            count.rotated += len(stale)
            count.undecryptable += len(lost)
            last_pk = rows[-1][0]


def _raw_rows(model, fields, *, after, limit):
    quote = connection.ops.quote_name
    pk = quote(model._meta.pk.column)
    columns = ", ".join(quote(field.column) for field in fields)
    where = f"WHERE {pk} > %s " if after is not None else ""
    table = quote(model._meta.db_table)
    # Identifiers come from model metadata and are quoted; values are parameters.
    sql = f"SELECT {pk}, {columns} FROM {table} {where}ORDER BY {pk} LIMIT %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [after, limit] if after is not None else [limit])
        return cursor.fetchall()


def _all_current(fields, raw_values):
    return all(
        raw is None or field.is_current(raw) for field, raw in zip(fields, raw_values, strict=True)
    )


def _all_decrypt(fields, raw_values):
    return all(
        raw is None or field.decrypts(raw) for field, raw in zip(fields, raw_values, strict=True)
    )
