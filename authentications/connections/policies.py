"""When a token needs refreshing: each rule stated once, as a database filter and a row check.

A refresh is decided twice. cron selects the rows that need one with a queryset filter; then
`tokens.refresh` checks each row again once it holds the lease, because a peer (a web
worker, an overlapping run) may have refreshed it in between, and a second token request
would be wasted or, with rotating refresh tokens, harmful. Written in two modules, the SQL
and the Python said the same rule twice and could drift; here each policy holds both side
by side, and `tests/connections/test_policies.py` checks that they agree on the same rows.

`policy.q(now)` is the filter, `policy.matches(row, now)` the check, `policy(row)` the check
at this moment (what `tokens.refresh(needed=...)` calls) and `a | b` needs either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from authentications.connections.models import Authentication

# A refresh this recent answers a forced refresh too: a burst of 401s costs one refresh.
RECENT_REFRESH = timedelta(seconds=10)


class RefreshPolicy(ABC):
    """A rule saying which connections need a new access token."""

    @abstractmethod
    def q(self, now: datetime) -> Q:
        """The rule as a filter on `Authentication` rows, at `now`."""

    @abstractmethod
    def matches(self, row: Authentication, now: datetime) -> bool:
        """The rule for one loaded row, at `now`."""

    def __call__(self, row: Authentication) -> bool:
        return self.matches(row, timezone.now())

    def select(self, queryset: QuerySet, now: datetime | None = None) -> QuerySet:
        return queryset.filter(self.q(now or timezone.now()))

    def __or__(self, other: RefreshPolicy) -> RefreshPolicy:
        return AnyOf((self, other))


@dataclass(frozen=True)
class ExpiresWithin(RefreshPolicy):
    """The access token is missing or expires within `seconds`.

    The token column is encrypted, so SQL cannot see whether it is empty; its expiry stands
    for it (a token and its expiry are always stored and forgotten together). The row check
    also treats a token no key decrypts as missing, so the refresh reports that row instead
    of handing out an empty token.
    """

    seconds: float

    def q(self, now):
        horizon = now + timedelta(seconds=self.seconds)
        return Q(access_token_expires_at__isnull=True) | Q(access_token_expires_at__lte=horizon)

    def matches(self, row, now):
        expires_at = row.access_token_expires_at
        return (
            not row.access_token
            or expires_at is None
            or expires_at <= now + timedelta(seconds=self.seconds)
        )


@dataclass(frozen=True)
class NotRefreshedSince(RefreshPolicy):
    """Not refreshed since `moment`: a time, or a duration back from now."""

    moment: datetime | timedelta

    def _since(self, now):
        return now - self.moment if isinstance(self.moment, timedelta) else self.moment

    def q(self, now):
        return Q(last_refreshed_at__isnull=True) | Q(last_refreshed_at__lt=self._since(now))

    def matches(self, row, now):
        return row.last_refreshed_at is None or row.last_refreshed_at < self._since(now)


@dataclass(frozen=True)
class Always(RefreshPolicy):
    """Every row: a token must be acquired now (the admin Save after a change)."""

    def q(self, now):
        return Q()

    def matches(self, row, now):
        return True


@dataclass(frozen=True)
class AnyOf(RefreshPolicy):
    """Needs a refresh when any of `policies` says so."""

    policies: tuple[RefreshPolicy, ...]

    def q(self, now):
        combined = Q(pk__in=[])
        for policy in self.policies:
            combined |= policy.q(now)
        return combined

    def matches(self, row, now):
        return any(policy.matches(row, now) for policy in self.policies)


# The named policies: who asks for a refresh, and when it is needed.


def before_use(seconds: float | None = None) -> RefreshPolicy:
    """Code asking for a token (`get_access_token`): refresh within the skew of expiry, or
    within `seconds` when the caller said how long the token must last (the HTTP API)."""
    return ExpiresWithin(settings.BC_TOKEN_SKEW_SECONDS if seconds is None else seconds)


def forced() -> RefreshPolicy:
    """A token BC refused (401) or Refresh now: refresh unless a peer just did."""
    return ExpiresWithin(0) | NotRefreshedSince(RECENT_REFRESH)


def cron_due(*, within_minutes: float, keep_alive_hours: float) -> RefreshPolicy:
    """What `refresh_tokens` refreshes: expiring soon, or not refreshed for a while.

    The keep-alive keeps a connection nobody uses alive (Entra refresh tokens die after 90
    days unused) and notices a revoked one within a day, not when an order must sync.
    """
    return ExpiresWithin(within_minutes * 60) | NotRefreshedSince(timedelta(hours=keep_alive_hours))


def since_run_started(started: datetime) -> RefreshPolicy:
    """`refresh_tokens --all` / `--name`: every one, unless an overlapping run just did it."""
    return NotRefreshedSince(started)


ALWAYS = Always()
