"""Each refresh policy's filter (what cron selects) and its row check (what the lease
holder checks again) say the same thing: both are asked about the same rows at one moment."""

from datetime import datetime, timedelta
from itertools import product

import pytest
from django.utils import timezone

from authentications.connections import policies
from authentications.connections.models import Authentication
from authentications.kit.fields import Undecryptable

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.get_fixed_timezone(0))
# Expiry and last refresh around every boundary the policies draw (seconds from NOW).
EXPIRES_IN = (None, -3600, -1, 0, 1, 299, 300, 301, 3599, 3600, 3601, 86400)
REFRESHED_AGO = (None, 0, 1, 9, 10, 11, 3600, 23 * 3600, 24 * 3600, 24 * 3600 + 1, 90 * 86400)

POLICIES = {
    "before use": policies.ExpiresWithin(300),
    "forced": policies.forced(),
    "cron due": policies.cron_due(within_minutes=60, keep_alive_hours=24),
    "since run started": policies.since_run_started(NOW - timedelta(seconds=10)),
    "always": policies.ALWAYS,
    "expired": policies.ExpiresWithin(0),
}


@pytest.fixture
def rows(db):
    """One connection for every combination of expiry and last refresh."""
    made = []
    for n, (expires_in, refreshed_ago) in enumerate(product(EXPIRES_IN, REFRESHED_AGO)):
        made.append(
            Authentication.objects.create(
                name=f"Row {n}",
                client_id="00000000-0000-0000-0000-000000000001",
                tenant_id="contoso.onmicrosoft.com",
                base_url="https://api.businesscentral.dynamics.com/v2.0/Production",
                access_token="" if expires_in is None else f"token-{n}",
                access_token_expires_at=(
                    None if expires_in is None else NOW + timedelta(seconds=expires_in)
                ),
                last_refreshed_at=(
                    None if refreshed_ago is None else NOW - timedelta(seconds=refreshed_ago)
                ),
            )
        )
    return made


@pytest.mark.parametrize("name", POLICIES)
def test_the_filter_and_the_row_check_agree_on_every_row(rows, name):
    policy = POLICIES[name]
    selected = set(policy.select(Authentication.objects.all(), NOW).values_list("pk", flat=True))
    checked = {row.pk for row in Authentication.objects.all() if policy.matches(row, NOW)}
    assert selected == checked
    assert 0 < len(checked) <= len(rows)


def test_each_named_policy_draws_its_line_where_its_name_says(rows):
    def needs(policy, expires_in, refreshed_ago):
        row = Authentication(
            access_token="t",
            access_token_expires_at=NOW + timedelta(seconds=expires_in),
            last_refreshed_at=NOW - timedelta(seconds=refreshed_ago),
        )
        return policy.matches(row, NOW)

    before_use = policies.ExpiresWithin(300)
    assert needs(before_use, 300, 0) and not needs(before_use, 301, 10**6)
    forced = policies.forced()
    assert not needs(forced, 3600, 9) and needs(forced, 3600, 11) and needs(forced, 0, 0)
    due = policies.cron_due(within_minutes=60, keep_alive_hours=24)
    assert needs(due, 3600, 0) and needs(due, 86400, 24 * 3600 + 1)
    assert not needs(due, 3601, 24 * 3600 - 1)


def test_a_token_no_key_decrypts_needs_a_refresh_whatever_its_expiry():
    row = Authentication(
        access_token=Undecryptable(),
        access_token_expires_at=NOW + timedelta(days=1),
        last_refreshed_at=NOW,
    )
    assert policies.ExpiresWithin(300).matches(row, NOW)
    assert policies.forced().matches(row, NOW)


def test_before_use_follows_the_skew_setting(settings):
    settings.BC_TOKEN_SKEW_SECONDS = 42
    assert policies.before_use() == policies.ExpiresWithin(42)


def test_called_as_a_predicate_a_policy_checks_at_this_moment():
    now = timezone.now()
    soon = Authentication(access_token="t", access_token_expires_at=now + timedelta(seconds=5))
    later = Authentication(access_token="t", access_token_expires_at=now + timedelta(hours=2))
    assert policies.ExpiresWithin(60)(soon) and not policies.ExpiresWithin(60)(later)
