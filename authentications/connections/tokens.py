"""Valid access tokens for code, cron and the admin, refreshed once per expiry.

Many workers, overlapping cron runs and several hosts may want a token at the same moment,
and Entra rotates refresh tokens (each is good for one use here), so a refresh is
serialised per authentication by a lease: one conditional UPDATE that works the same on
SQLite and PostgreSQL. The lease holder calls Microsoft with no transaction or lock open
and stores the result with a write fenced by its lease id; everyone else waits briefly and
re-reads what it stored.
"""

import logging
import math
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from authentications import mail
from authentications.connections import consent, credentials, link_tokens, oauth, policies
from authentications.connections.models import Authentication, Event
from authentications.connections.oauth import EntraError
from authentications.kit import signals
from authentications.kit.fields import KEY_MISSING
from authentications.kit.formatting import when
from authentications.kit.per_process import PerProcess
from authentications.kit.validators import allowed_api_hosts
from bcconnect.client import BusinessCentralClient, Exchange, RetryPolicy
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)

POLL_FIRST, POLL_MAX = 0.02, 0.25  # Seconds a waiting caller sleeps between re-reads.
# One refresh waits for at most one other thread's OpenID discovery of the same authority,
# then makes at most two calls of its own (the discovery, once per process and authority,
# and the token request): three calls, each bounded by BC_HTTP_TIMEOUT (connect, read).
ENTRA_CALLS_PER_REFRESH = 3
LEASE_MARGIN_SECONDS = 10  # Name resolution and the database work around the calls.
UNREACHABLE_LIMIT = 3  # Network failures in a row after which a run stops asking a host.
SKIPPED_UNREACHABLE = "entra_unreachable"
FAST_FIELDS = ("id", "access_token", "access_token_expires_at")
WAIT_FIELDS = (
    *FAST_FIELDS,
    "kind",
    "status",
    "last_refreshed_at",
    "last_error",
    "last_error_code",
    "lease_until",
    "updated_at",
)
# Only a person can fix these: a new sign-in, a new client secret, the app registration.
BROKEN = (
    Authentication.Status.NEEDS_SIGN_IN,
    Authentication.Status.SECRET_INVALID,
    Authentication.Status.APP_MISSING,
)
# Of those, the ones where Entra refused the app itself: asking again with the same
# credentials only earns the same answer (and hammers Entra), so nobody asks until they
# change or a person asks.
BACK_OFF = (Authentication.Status.SECRET_INVALID, Authentication.Status.APP_MISSING)


class TokenError(BcconnectError):
    """No valid access token.

    `needs_sign_in`: only a person can fix it (sign in again, or a new client secret);
    `transient`: Microsoft was unreachable or busy, try again later.
    """

    def __init__(self, message, *, code, needs_sign_in=False, transient=False):
        super().__init__(message, code=code, transient=transient)
        self.needs_sign_in = needs_sign_in


class UnreachableHosts:
    """One run's count of network failures in a row, per Entra host.

    During an outage every token request costs a timeout; once a host has failed `limit`
    times in a row, the run asks it nothing more: the remaining refreshes are recorded as
    transient failures (tokens kept, status Failing) at once. Any answer from the host,
    even a refusal, starts the count again.
    """

    def __init__(self, limit=UNREACHABLE_LIMIT):
        self.limit = limit
        self._failures = Counter()
        self._lock = threading.Lock()

    def check(self, host):
        """Raise a transient EntraError when `host` has stopped answering in this run."""
        with self._lock:
            given_up = self._failures[host] >= self.limit
        if given_up:
            raise EntraError(
                f"Microsoft ({host}) did not answer {self.limit} requests in a row, so this run "
                "stopped asking; the tokens are kept and the next run tries again.",
                code=SKIPPED_UNREACHABLE,
                transient=True,
            )

    def note(self, host, *, answered):
        with self._lock:
            self._failures[host] = 0 if answered else self._failures[host] + 1


@dataclass(frozen=True)
class RefreshResult:
    """What `refresh` did: `refreshed` is False when a peer's fresh token was reused."""

    authentication: Authentication
    refreshed: bool


def get_access_token(authentication: Authentication | int, *, force_refresh: bool = False) -> str:
    """Return a valid access token for `authentication` (an instance or a primary key).

    A fresh token costs one database read and one decrypt. `force_refresh` is for a
    caller whose token was just refused (HTTP 401): it refreshes unless a peer just did.
    """
    return access_token(authentication, force_refresh=force_refresh).value


@dataclass(frozen=True)
class AccessToken:
    """A token and when it expires: what the HTTP API hands to other services."""

    value: str = field(repr=False)
    expires_at: datetime


def access_token(
    authentication: Authentication | int,
    *,
    force_refresh: bool = False,
    min_validity: float | None = None,
    just_read: bool = False,
) -> AccessToken:
    """`get_access_token` with the expiry: a token valid for `min_validity` seconds more.

    `min_validity` defaults to BC_TOKEN_SKEW_SECONDS. A shorter-lived stored token is
    refreshed first, through the same lease: however many callers ask at once, one token
    request is made. `just_read`: `authentication` is a row the caller read a moment ago
    with FAST_FIELDS (the API's permission check does), so its token is used as read
    instead of reading it again; an instance held longer is read again, as by default.
    """
    pk = getattr(authentication, "pk", authentication)
    skew = settings.BC_TOKEN_SKEW_SECONDS if min_validity is None else min_validity
    if not force_refresh:
        if just_read and isinstance(authentication, Authentication):
            row = authentication
        else:
            row = Authentication.objects.only(*FAST_FIELDS).filter(pk=pk).first()
        if row is None:
            raise TokenError("This authentication no longer exists.", code="not_found")
        if row.token_valid_for(skew):
            return AccessToken(row.access_token, row.access_token_expires_at)
    needed = policies.forced() if force_refresh else policies.before_use(skew)
    try:
        row = refresh(pk, needed=needed).authentication
        return AccessToken(row.access_token, row.access_token_expires_at)
    except TokenError as err:
        if err.transient:
            # Microsoft unreachable: a token that has not actually expired still works.
            row = Authentication.objects.only(*FAST_FIELDS).filter(pk=pk).first()
            if row is not None and row.token_valid_for(0):
                return AccessToken(row.access_token, row.access_token_expires_at)
        raise


def refresh(
    authentication: Authentication | int,
    *,
    needed: Callable[[Authentication], bool],
    actor: str = "",
    by_person: bool = False,
    unreachable: UnreachableHosts | None = None,
) -> RefreshResult:
    """Refresh the token when `needed(row)` still holds once this caller has the lease.

    `needed` is a policy from `authentications.connections.policies` (any row predicate will do).

    Raises TokenError. The predicate is checked again after the lease is taken (and by
    waiting callers after each re-read), so whoever asks, one token request is made.
    `by_person`: a person asked (Refresh now, the admin Save, `refresh_tokens --name`), so
    Entra is asked even when it refused these credentials before; code and cron are not.
    `unreachable`: a run's UnreachableHosts, to skip a host that has stopped answering.
    """
    pk = getattr(authentication, "pk", authentication)
    started = timezone.now()
    deadline = time.monotonic() + lease_seconds() + 5  # A holder's lease ends before it.
    pause = POLL_FIRST
    while True:
        lease_id = _take_lease(pk)
        if lease_id:
            return _refresh_holding_lease(
                pk,
                lease_id,
                needed=needed,
                actor=actor,
                by_person=by_person,
                unreachable=unreachable,
            )
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, POLL_MAX)
        row = _read(pk, WAIT_FIELDS)
        if not needed(row):
            return RefreshResult(row, refreshed=False)
        if _peer_failed_since(row, started):
            raise _stored_error(row)
        if time.monotonic() > deadline:
            raise TokenError(
                "Another refresh of this connection is still running; try again shortly.",
                code="refresh_in_progress",
                transient=True,
            )


def lease_seconds():
    """How long a refresh holds its lease: longer than a slow Entra can keep it waiting.

    A lease that ended while its holder still waits for Microsoft would let a second caller
    send a second token request. BC_LEASE_SECONDS may lengthen the lease, never shorten it
    (`manage.py check` warns about a shorter one).
    """
    return max(settings.BC_LEASE_SECONDS, minimum_lease_seconds())


def minimum_lease_seconds():
    """The worst case of one refresh's HTTP calls, from BC_HTTP_TIMEOUT, plus a margin.

    The read timeout bounds each wait for a byte, so a server that trickles its answer can
    still outlast the lease; if another caller took the lease meanwhile, the fenced store
    refuses the late answer (`lease_lost`).
    """
    connect, read = settings.BC_HTTP_TIMEOUT
    return math.ceil(ENTRA_CALLS_PER_REFRESH * (connect + read) + LEASE_MARGIN_SECONDS)


def _read(pk, fields=None):
    queryset = Authentication.objects.filter(pk=pk)
    row = (queryset.only(*fields) if fields else queryset).first()
    if row is None:
        raise TokenError("This authentication no longer exists.", code="not_found")
    return row


def _take_lease(pk):
    """Take the refresh lease with one conditional UPDATE; the new lease id, or None."""
    now = timezone.now()
    lease_id = secrets.token_hex(16)
    taken = (
        Authentication.objects.filter(pk=pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + timedelta(seconds=lease_seconds()), lease_id=lease_id)
    )
    return lease_id if taken else None


def _fenced(row, lease_id):
    """The row, only while this caller holds its lease and nothing replaced what it read.

    A sign-in that completes while a refresh is at Microsoft stores a new grant (perhaps
    another user's), and a disconnect or a new app registration or BC URL bumps the
    generation: the refresh started before either must not overwrite it.
    """
    return Authentication.objects.filter(
        pk=row.pk, lease_id=lease_id, granted_at=row.granted_at, generation=row.generation
    )


def _fence_lost(row):
    """The TokenError for a fenced store that wrote nothing, saying what got in the way."""
    current = Authentication.objects.filter(pk=row.pk).values_list("generation", flat=True)
    if current.first() != row.generation:
        return TokenError(
            "The connection was changed (disconnected, or its app registration or BC URL "
            "edited) while its token was being refreshed; nothing was stored.",
            code="connection_changed",
            transient=True,
        )
    return TokenError(
        "The connection was refreshed or signed in again elsewhere meanwhile; try again.",
        code="lease_lost",
        transient=True,
    )


def _release(pk, lease_id):
    Authentication.objects.filter(pk=pk, lease_id=lease_id).update(lease_until=None, lease_id="")


def _lease_free(row):
    return row.lease_until is None or row.lease_until < timezone.now()


def _peer_failed_since(row, started):
    """Whether the lease holder that made us wait has recorded a failure meanwhile."""
    failed = row.status in BROKEN or row.status == Authentication.Status.FAILING
    return failed and _lease_free(row) and row.updated_at >= started


def _backing_off(row):
    """Whether Entra refused these very credentials for a reason only a person can fix."""
    return row.status in BACK_OFF and row.refused_credentials == _credentials_fingerprint(row)


def _credentials_fingerprint(row):
    """A keyed hash of what Entra refused: it tells when someone changed it, and no more."""
    return credentials.fingerprint(row)


def _stored_error(row):
    return TokenError(
        row.last_error or "The last token refresh failed.",
        code=row.last_error_code or row.status,
        needs_sign_in=row.status in BROKEN,
        transient=row.status == Authentication.Status.FAILING,
    )


def _refresh_holding_lease(pk, lease_id, *, needed, actor, by_person, unreachable):
    stored = False
    try:
        row = _read(pk)
        if not needed(row):  # A peer refreshed between our read and our lease.
            return RefreshResult(row, refreshed=False)
        if _backing_off(row) and not by_person:
            raise _stored_error(row)
        tokens = _request_tokens(row, lease_id, actor=actor, unreachable=unreachable)
        row = _store(row, lease_id, tokens, actor=actor)  # Releases the lease as it stores.
        stored = True
        return RefreshResult(row, refreshed=True)
    finally:
        if not stored:
            _release(pk, lease_id)  # Fenced: a no-op once someone else holds it.


def _request_tokens(row, lease_id, *, actor, unreachable):
    """Ask Entra for new tokens; never with a transaction or lock open."""
    if row.cannot_decrypt:
        raise TokenError(KEY_MISSING, code="key_missing")
    if consent.awaiting_consent(row):
        raise TokenError(consent.AWAITING_CONSENT, code="awaiting_consent")
    if not row.has_credentials():
        raise TokenError(
            "The app registration is incomplete: fill in the client ID, tenant, secret (or "
            "certificate) and BC URL.",
            code="not_configured",
        )
    if not row.is_user_impersonation:
        try:
            return _ask_entra(unreachable, oauth.acquire_for_client, row)
        except EntraError as err:
            refusal = consent.in_plain_words(row, err)
            raise _record_failure(row, lease_id, refusal, actor=actor) from err
    used = row.refresh_token
    if not used:
        raise _no_refresh_token(row, lease_id)
    try:
        return _ask_entra(unreachable, oauth.redeem_refresh_token, row, used)
    except EntraError as err:
        if err.needs_sign_in and not _still_stored(row.pk, used):
            # A sibling rotated the refresh token under us: its answer is the one that counts.
            raise TokenError(
                "The connection was refreshed elsewhere at the same time; try again.",
                code="superseded",
                transient=True,
            ) from err
        raise _record_failure(row, lease_id, err, actor=actor) from err


def _ask_entra(unreachable, request, row, *args):
    """One token request, unless this run has found the authority host unreachable."""
    if unreachable is None:
        return request(row, *args)
    host = urlsplit(settings.BC_AUTHORITY_HOST).netloc
    unreachable.check(host)
    try:
        tokens = request(row, *args)
    except EntraError as err:
        unreachable.note(host, answered=not err.unreachable)
        raise
    unreachable.note(host, answered=True)
    return tokens


def _still_stored(pk, refresh_token):
    return _read(pk, ("id", "refresh_token")).refresh_token == refresh_token


def _no_refresh_token(row, lease_id):
    if row.status == Authentication.Status.NOT_CONNECTED:
        return TokenError(
            "Nobody has signed in for this connection yet.",
            code="not_connected",
            needs_sign_in=True,
        )
    if row.status in BROKEN:
        return _stored_error(row)
    error = EntraError(
        "No refresh token is stored; someone must sign in again.",
        code="no_refresh_token",
        needs_sign_in=True,
    )
    return _record_failure(row, lease_id, error, actor="")


def _store(row, lease_id, tokens, *, actor):
    """Store what Entra returned, only while this caller still holds the lease."""
    now = timezone.now()
    changes = {
        "access_token": tokens.access_token,
        # Entra rotates refresh tokens: keep the old one only when no new one came back.
        "refresh_token": tokens.refresh_token or row.refresh_token,
        "access_token_expires_at": tokens.expires_at,
        "last_refreshed_at": now,
        "status": Authentication.Status.CONNECTED,
        "consecutive_failures": 0,
        "last_error": "",
        "last_error_code": "",
        "lease_until": None,
        "lease_id": "",
        "updated_at": now,
    }
    if not row.is_user_impersonation:
        changes.update(
            refresh_token="",
            granted_via=Authentication.GrantedVia.CLIENT_CREDENTIALS,
            granted_at=row.granted_at or now,
        )
    with transaction.atomic():
        if not _fenced(row, lease_id).update(**changes):
            raise _fence_lost(row)
        kind = (
            Event.Kind.TOKEN_REFRESHED if row.is_user_impersonation else Event.Kind.TOKEN_ACQUIRED
        )
        valid_until = when(tokens.expires_at, zone=True)
        row.record(kind, actor=actor, detail=f"Access token valid until {valid_until}.")
    for name, value in changes.items():
        setattr(row, name, value)
    logger.info("Refreshed the access token of %s", row)
    signals.token_refresh.send(sender=Authentication, outcome="refreshed")
    return row


def _record_failure(row, lease_id, err, *, actor):
    """Record a failed token request; returns the TokenError to raise."""
    if err.transient:
        return _record_transient(row, lease_id, err, actor=actor)
    if err.needs_person:
        return _record_broken(row, lease_id, err, actor=actor)
    # Refused for another reason (unknown tenant or app): keep the tokens, report it.
    return _record_transient(row, lease_id, err, actor=actor, transient=False)


def _failure_changes(err):
    return {
        "last_error": err.message,
        "last_error_code": err.display_code,
        "consecutive_failures": F("consecutive_failures") + 1,
        "lease_until": None,
        "lease_id": "",
        "updated_at": timezone.now(),
    }


def _record_transient(row, lease_id, err, *, actor, transient=True):
    """Keep every stored token: the next attempt may well succeed.

    A connection that waits for a person keeps that status and reason: a blip while someone
    retries changes nothing that needs fixing, and must not make the next refusal look like
    a new breakage (which would email again).
    """
    changes = _failure_changes(err)
    if row.status in BROKEN:
        del changes["last_error"], changes["last_error_code"]
    else:
        changes["status"] = Authentication.Status.FAILING
    with transaction.atomic():
        if _fenced(row, lease_id).update(**changes):
            row.record(Event.Kind.REFRESH_FAILED, actor=actor, detail=_detail(err))
    logger.warning("Token refresh for %s failed (%s); tokens kept", row, err.display_code)
    outcome = "transient" if transient else "refused"
    signals.token_refresh.send(sender=Authentication, outcome=outcome)
    return TokenError(err.message, code=err.display_code, transient=transient)


def _record_broken(row, lease_id, err, *, actor):
    """Only a person can fix this: flag it, and tell people once per transition."""
    status = _broken_status(err)
    changes = {**_failure_changes(err), "status": status}
    if status == Authentication.Status.NEEDS_SIGN_IN:
        changes["refresh_token"] = ""  # Dead: Entra will never accept it again.
    else:  # The refresh token still works once the app registration does: keep it.
        changes["refused_credentials"] = _credentials_fingerprint(row)
    with transaction.atomic():
        stored = _fenced(row, lease_id).update(**changes)
        if stored:
            row.record(Event.Kind.NEEDS_SIGN_IN, actor=actor, detail=_detail(err))
    if stored and row.status != status:
        _notify_broken(row, status=status, err=err)
    logger.warning("Token refresh for %s needs a person: %s", row, err.display_code)
    signals.token_refresh.send(sender=Authentication, outcome=status.value)
    row.status = status
    return TokenError(err.message, code=err.display_code, needs_sign_in=True)


def _broken_status(err):
    if err.secret_invalid:
        return Authentication.Status.SECRET_INVALID
    if err.app_missing:
        return Authentication.Status.APP_MISSING
    return Authentication.Status.NEEDS_SIGN_IN


def _detail(err):
    return f"{err.display_code}: {err.message}"


def _fix_link(pk, *, status):
    """An Authorization URL to send a BC user, when a new sign-in is what fixes it."""
    authentication = Authentication.objects.get(pk=pk)
    if status != Authentication.Status.NEEDS_SIGN_IN or not link_tokens.link_available(
        authentication
    ):
        return ""
    return link_tokens.authorization_url(authentication).url


def _notify_broken(row, *, status, err):
    label = credentials.status_label(row, status)
    mail.notify_quietly(
        "needs_sign_in",
        {
            "authentication": row,
            "status": label,
            "reason": err.message,
            "code": err.display_code,
            "secret_invalid": status == Authentication.Status.SECRET_INVALID,
            "app_missing": status == Authentication.Status.APP_MISSING,
            "consent_missing": isinstance(err, consent.ConsentMissing),
            "admin_url": mail.admin_url(row),
            "authorization_url": _fix_link(row.pk, status=status),
        },
        subject=f"“{row.name}”: {label.lower()}",
    )


# --- the Business Central client, wired to this module's tokens -------------------------


def _bc_session():
    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    return session


# One pooled session for every BC call in the process (connections are kept per host).
_bc_sessions = PerProcess(_bc_session)


def bc_client(
    authentication: Authentication,
    *,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
    just_read: bool = False,
) -> BusinessCentralClient:
    """A `BusinessCentralClient` for `authentication`: what code, admin and `bc` use.

    Tokens come from `get_access_token` on every request (a 401 forces one refresh);
    requests per authentication are limited by `BC_CLIENT_MAX_CONCURRENCY` in this process.
    `retry` replaces the default retry policy (the API's proxy bounds how long it waits).
    `just_read`: `authentication` was read a moment ago with FAST_FIELDS (the API's
    permission check does): its token serves the first request; any later one reads again.
    """
    unused = [authentication] if just_read else []

    def token_provider(force_refresh: bool = False) -> str:
        if unused and not force_refresh:
            return access_token(unused.pop(), just_read=True).value
        return get_access_token(authentication, force_refresh=force_refresh)

    return BusinessCentralClient(
        base_url or authentication.base_url,
        token_provider,
        session=_bc_sessions.get(),
        timeout=tuple(settings.BC_HTTP_TIMEOUT),
        max_concurrency=settings.BC_CLIENT_MAX_CONCURRENCY,
        concurrency_key=f"authentication:{authentication.pk}",
        allowed_hosts=allowed_api_hosts(),
        api_host=settings.BC_API_HOST,
        retry=retry or RetryPolicy(),
        on_exchange=_announce_exchange,
    )


def _announce_exchange(exchange: Exchange) -> None:
    signals.sent_outside(
        "bc", exchange.seconds, status=exchange.status, timed_out=exchange.timed_out
    )
