"""A database made before the package move migrates forward and reads back identically.

The move (issue 20) put every model in a capability package under the same app label and the
same tables, so a site that upgrades must need no migration that moves data. This builds the
schema of the last migration before the move (0016) from the migration history alone, puts
rows in every table through the historical models, migrates to today's leaves and reads every
row back through today's models, field by field, secrets decrypted.
"""

import hashlib
import json
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, migrations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from fernet_fields.fields import EncryptedField

from authentications.certificates import keypairs

APP = "authentications"
BEFORE_THE_MOVE = (APP, "0016_endpoint_exports_and_write_confirmations")
DATA_MOVERS = (migrations.RunPython, migrations.RunSQL)

AT = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)  # Microseconds must survive too.
CONTOSO_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CRONUS_COMPANY = "5d115c9c-44e3-ea11-bb43-000d3a2feca1"


def app_models(registry):
    return [
        model
        for model in registry.get_models()
        if model._meta.app_label == APP and not model._meta.proxy and model._meta.managed
    ]


def tables(registry):
    """Each table of the app with its columns."""
    return {
        model._meta.db_table: {field.column for field in model._meta.concrete_fields}
        for model in app_models(registry)
    }


def before_the_move():
    return MigrationLoader(None, ignore_no_migrations=True).project_state(BEFORE_THE_MOVE).apps


def test_every_table_and_column_from_before_the_move_is_still_a_model():
    old, new = tables(before_the_move()), tables(apps)

    assert set(old) - set(new) == set()  # Later capabilities (the HTTP API) add tables.
    assert {table: columns - new[table] for table, columns in old.items()} == {
        table: set() for table in old
    }


def operations(migration_operations):
    for operation in migration_operations:
        yield operation
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from operations(operation.database_operations)


def test_no_migration_after_the_move_moves_data():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert BEFORE_THE_MOVE in loader.graph.nodes
    before = set(loader.graph.forwards_plan(BEFORE_THE_MOVE))
    after = [node for node in loader.graph.nodes if node[0] == APP and node not in before]

    movers = [
        (name, type(operation).__name__)
        for app, name in sorted(after)
        for operation in operations(loader.get_migration(app, name).operations)
        if isinstance(operation, DATA_MOVERS)
    ]
    assert movers == []


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    out = StringIO()
    try:
        call_command("makemigrations", APP, check=True, dry_run=True, stdout=out)
    except SystemExit:
        pytest.fail(f"makemigrations would write:\n{out.getvalue()}")


# --- a database from before the move, filled and read back -----------------------------


class Rows:
    """What was inserted: per model name, each row's primary key and the values written."""

    def __init__(self, registry):
        self.registry = registry
        self.written = {}

    def add(self, model_name, **values):
        model = self.registry.get_model(APP, model_name)
        row = model._base_manager.create(**values)
        self.written.setdefault(model._meta.model_name, {})[row.pk] = values
        return row


def fill_every_table(old):
    """Rows with realistic values in every table, through the models as they were at 0016."""
    user = old.get_model(settings.AUTH_USER_MODEL)._base_manager.create(
        username="jane.staff", email="jane@contoso.com", is_staff=True
    )
    rows = Rows(old)
    contoso, fabrikam = add_connections(rows, user)
    add_certificate(rows, contoso)
    add_endpoints(rows, contoso, fabrikam)
    add_webhooks(rows, contoso)
    return rows.written


def add_connections(rows, user):
    contoso = rows.add(
        "Authentication",
        name="Contoso – Produktion (Müller GmbH)",
        kind="user_impersonation",
        client_id="0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        tenant_id=CONTOSO_TENANT,
        credential_type="certificate",
        client_secret="Qx8~Vb3.kL9-zT2_client-secret-value",
        client_secret_expires_on=date(2027, 3, 31),
        base_url=f"https://api.businesscentral.dynamics.com/v2.0/{CONTOSO_TENANT}/production/api/v2.0",
        expected_user="jane@contoso.com",
        access_token="eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2FwaS5idXNpbmVzc2NlbnRyYWwuZHluYW1pY3MuY29tIn0.c2lnbmF0dXJl",
        refresh_token="0.AXkAv4j5cvGGr0GRqy180BHbR-rotating-refresh-token",
        access_token_expires_at=AT + timedelta(minutes=75),
        status="connected",
        granted_by_upn="jane@contoso.com",
        granted_by_name="Jane Müller",
        granted_by_oid="8a6f4c2e-1b3d-4e5f-9a7b-0c1d2e3f4a5b",
        granted_via="link",
        granted_at=AT - timedelta(days=3),
        last_refreshed_at=AT,
        last_error="Business Central answered 503 (Service Unavailable); retried at 09:31.",
        last_error_code="BC_503",
        consecutive_failures=1,
        refused_credentials=hashlib.sha256(b"refused").hexdigest(),
        secret_expiry_notified_days=30,
        lease_until=AT + timedelta(seconds=30),
        lease_id=uuid.uuid4().hex,
        link_nonce=secrets.token_urlsafe(16),
        generation=7,
    )
    fabrikam = rows.add(
        "Authentication",
        name="Fabrikam sandbox",
        kind="service_to_service",
        client_id="9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        tenant_id="",
        client_secret="Zz1~another-client-secret",
        base_url="https://api.businesscentral.dynamics.com/v2.0/fabrikam.onmicrosoft.com/sandbox/api/v2.0",
        status="needs_sign_in",
    )
    rows.add(
        "AuthorizationRequest",
        authentication_id=contoso.pk,
        state=secrets.token_urlsafe(32),
        flow=json.dumps(
            {
                "state": "abc",
                "redirect_uri": "https://bc.example.com/authentications/callback/",
                "scope": ["https://api.businesscentral.dynamics.com/.default", "offline_access"],
                "code_verifier": secrets.token_urlsafe(43),
                "nonce": secrets.token_hex(16),
                "claims_challenge": None,
            }
        ),
        binding_hash=hashlib.sha256(b"binding cookie").hexdigest(),
        started_via="link",
        purpose="sign_in",
        started_by_id=user.pk,
        link_nonce=contoso.link_nonce,
        generation=7,
        expires_at=AT + timedelta(minutes=10),
        used_at=AT + timedelta(minutes=2),
        outcome="granted",
        error_message="",
    )
    rows.add(
        "Event",
        authentication_id=contoso.pk,
        created_at=AT,
        kind="token_refreshed",
        actor="cron",
        detail="Access token refreshed; valid until 10:45 (UTC).",
    )
    return contoso, fabrikam


def add_certificate(rows, contoso):
    pair = keypairs.generate("bcconnect Contoso", valid_days=365, now=AT)
    rows.add(
        "Certificate",
        authentication_id=contoso.pk,
        role="current",
        source="generated",
        private_key=pair.private_key_pem,
        certificate_pem=pair.certificate_pem,
        subject="CN=bcconnect Contoso",
        thumbprint_sha1=keypairs.thumbprint(pair.certificate_pem),
        thumbprint_sha256=keypairs.thumbprint(pair.certificate_pem, "sha256"),
        not_before=AT - timedelta(minutes=5),
        not_after=AT + timedelta(days=365),
        expiry_notified_days=30,
    )


def add_endpoints(rows, contoso, fabrikam):
    rows.add(
        "Endpoint",
        name="Customers changed since",
        description="What the shop imports every hour.",
        authentication_id=fabrikam.pk,
        method="GET",
        path="api/v2.0/companies({company})/customers",
        company_id=CRONUS_COMPANY,
        company_name="CRONUS International Ltd.",
        params=[
            ["$filter", "lastModifiedDateTime gt 2026-12-01T00:00:00Z"],
            ["$select", "number,displayName,email"],
        ],
        headers=[["Accept-Language", "de-DE"]],
        body=None,
        read_only_intent=True,
        last_tested_at=AT,
        last_test_status=200,
        last_test_ms=412,
        last_test_rows=57,
        last_export_at=AT + timedelta(hours=1),
        last_export_rows=1234,
        last_export_complete=False,
        last_export_note="Stopped after 1,234 rows: Business Central answered 429.",
    )
    rename = rows.add(
        "Endpoint",
        name="Rename customer",
        authentication_id=contoso.pk,
        method="PATCH",
        path="ODataV4/Company('{company_name}')/Customer_Card('10000')",
        company_name="CRONUS AG",
        params={"$expand": "contacts"},
        headers=[["If-Match", "*"]],
        body={"displayName": "Adatum Zürich", "address": {"city": "Zürich"}, "tags": [1, 2.5]},
        read_only_intent=False,
        last_test_status=412,
        last_test_error="The record was changed by another user (ETag mismatch).",
    )
    rows.add(
        "WriteConfirmation",
        nonce=secrets.token_urlsafe(32),
        endpoint_id=rename.pk,
        fingerprint=hashlib.sha256(b"PATCH url headers body").hexdigest(),
        shown_to="jane.staff",
        created_at=AT,
        used_at=AT + timedelta(seconds=20),
        outcome={"status": 200, "ms": 233, "etag": 'W/"JzQ0OzEyMzQ1Njc4OTA7Jw=="', "ok": True},
    )


def add_webhooks(rows, contoso):
    customers = rows.add(
        "Subscription",
        authentication_id=contoso.pk,
        company_id=CRONUS_COMPANY,
        company_name="CRONUS International Ltd.",
        entity="customers",
        api_path="api/v2.0",
        subscription_id="4d7b2a5e9c1f4e3a8b6d0f2c4e6a8b0d",
        client_state=secrets.token_urlsafe(32),
        expires_at=AT + timedelta(days=3),
        etag='W/"JzE5OzEyMzQ1Njc4OTAxMjM0NTY3ODkwMTsn"',
        status="active",
        handshake_until=AT + timedelta(seconds=15),
        last_notification_at=AT,
        notifications_received=42,
        notifications_dropped=1,
        notifications_malformed=2,
        oversize_refused=1,
        last_oversize_at=AT - timedelta(hours=2),
        consecutive_failures=0,
        last_error="",
    )
    record = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b"
    rows.add(
        "ChangeNotification",
        subscription_id=customers.pk,
        key=hashlib.sha256(b"customers updated 1b2c").hexdigest(),
        record_key=f"customers/{record}",
        entity="customers",
        record_id=record,
        change_type="updated",
        changed_at=AT - timedelta(seconds=4),
        resource=f"api/v2.0/companies({CRONUS_COMPANY})/customers({record})",
        status="delivered",
        attempts=1,
        handler="shop.bc_handlers.customer_changed",
        received_at=AT,
        delivered_at=AT + timedelta(seconds=1),
    )


def read_back(registry, written, fields):
    """Every written row, as `registry`'s models read it: {model: {pk: {attname: value}}}."""
    rows = {}
    for model_name, pks in written.items():
        model = registry.get_model(APP, model_name)
        found = model._base_manager.in_bulk(list(pks))
        rows[model_name] = {
            pk: {name: getattr(row, name) for name in fields[model_name]}
            for pk, row in found.items()
        }
    return rows


def only_written(read, written):
    """`read` narrowed to the fields `written` names for each row."""
    return {
        model: {pk: {name: row[name] for name in written[model][pk]} for pk, row in rows.items()}
        for model, rows in read.items()
    }


def stored_ciphertexts(registry, read):
    """Each encrypted value read, with the raw column that holds it."""
    for model in app_models(registry):
        encrypted = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        for pk, values in read.get(model._meta.model_name, {}).items():
            for field in encrypted:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT {connection.ops.quote_name(field.column)} "
                        f"FROM {connection.ops.quote_name(model._meta.db_table)} WHERE "
                        f"{connection.ops.quote_name(model._meta.pk.column)} = %s",
                        [model._meta.pk.get_db_prep_value(pk, connection)],
                    )
                    (raw,) = cursor.fetchone()
                yield f"{model._meta.model_name}.{field.name}", values[field.attname], bytes(raw)


def migrate(executor, targets):
    executor.loader.build_graph()  # What the last call applied.
    executor.migrate(targets)
    executor.loader.build_graph()


# transaction=True: migrations cannot run inside the test's transaction; the flush after it
# empties the tables again, and the finally leaves the schema at today's leaves for the tests
# that run after this one.
@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_reads_back_identically():
    executor = MigrationExecutor(connection)
    today = executor.loader.graph.leaf_nodes()
    before = [node for node in today if node[0] != APP] + [BEFORE_THE_MOVE]
    try:
        # Drop the app's tables first: the old schema comes from the migration history alone.
        migrate(executor, [(APP, None)])
        migrate(executor, before)
        old = executor.loader.project_state(before).apps
        written = fill_every_table(old)
        fields = {
            model._meta.model_name: [field.attname for field in model._meta.concrete_fields]
            for model in app_models(old)
        }
        assert set(written) == set(fields), "every table at 0016 gets rows"
        at_0016 = read_back(old, written, fields)
        assert only_written(at_0016, written) == written

        migrate(executor, today)

        assert read_back(apps, written, fields) == at_0016
        secrets_read = list(stored_ciphertexts(apps, at_0016))
        assert {name for name, plain, raw in secrets_read if plain} == {
            name for name, plain, raw in secrets_read
        }, "every encrypted column holds a secret in some row"
        for name, plain, raw in secrets_read:
            if plain:
                assert plain.encode() not in raw, f"{name} is stored in clear"
    finally:
        migrate(executor, today)
