"""What Prometheus scrapes at `/metrics`: counts of what happened, and the state of the data.

Two kinds. Counters and histograms are incremented where things happen (requests to Entra
and BC, token refreshes, API calls, our own HTTP answers); under gunicorn each worker writes
them to files in PROMETHEUS_MULTIPROC_DIR and the scrape adds them up. Gauges of state
(authentications by status, expiries, the notification inbox, subscriptions, the task
queue) are read from the database at scrape time, once, whichever process answers.

No label value comes from a request or a person: labels are statuses, outcomes and classes
chosen in code.
"""

import os
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.dispatch import receiver
from django.utils import timezone
from django_tasks import task_backends
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication
from authentications.kit import signals
from authentications.operations import process_files
from authentications.webhooks.models import ChangeNotification, Subscription

# Entra answers in tens of milliseconds, BC in up to tens of seconds (big pages, $batch).
OUTSIDE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10)
API_SCOPE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.:-")

outside_seconds = Histogram(
    "bcconnect_outside_request_duration_seconds",
    "Seconds each HTTP request to Microsoft took, by system (entra, bc); retries count apart.",
    ["system"],
    buckets=OUTSIDE_BUCKETS,
)
outside_requests = Counter(
    "bcconnect_outside_requests",
    "HTTP requests to Microsoft by system (entra, bc) and answer "
    "(2xx, 3xx, 4xx, 429, 5xx, timeout, network_error).",
    ["system", "answer"],
)
token_refreshes = Counter(
    "bcconnect_token_refreshes",
    "Token requests to Entra by outcome: refreshed, transient (tokens kept), refused, or "
    "the status a person must fix (needs_sign_in, secret_invalid, app_missing).",
    ["outcome"],
)
api_requests = Counter(
    "bcconnect_api_requests",
    "Calls to the HTTP API for other services, by the scope they needed and the status answered.",
    ["scope", "status"],
)
http_responses = Counter(
    "bcconnect_http_responses",
    "HTTP answers of this site by status class (2xx, 3xx, 4xx, 5xx).",
    ["status"],
)
http_seconds = Histogram(
    "bcconnect_http_request_duration_seconds",
    "Seconds this site took to answer a request (admin, public pages, API, probes).",
    buckets=HTTP_BUCKETS,
)


@receiver(signals.outside_request, dispatch_uid="operations.metrics.outside_request")
def count_outside_request(sender, *, seconds, answer, **kwargs):
    outside_seconds.labels(system=sender).observe(seconds)
    outside_requests.labels(system=sender, answer=answer).inc()


@receiver(signals.token_refresh, dispatch_uid="operations.metrics.token_refresh")
def count_token_refresh(sender, *, outcome, **kwargs):
    token_refreshes.labels(outcome=outcome).inc()


@receiver(signals.api_call, dispatch_uid="operations.metrics.api_call")
def count_api_call(sender, *, scope, status, **kwargs):
    api_requests.labels(scope=api_scope(scope), status=str(int(status))).inc()


def api_scope(scope):
    """A scope name as the API's code spells it; anything else is counted as "other"."""
    scope = str(scope)
    if 0 < len(scope) <= 40 and set(scope) <= API_SCOPE_CHARACTERS:
        return scope
    return "other"


def count_response(status, seconds):
    http_responses.labels(status=f"{min(max(status // 100, 1), 5)}xx").inc()
    http_seconds.observe(seconds)


class StateCollector:
    """Gauges read from the database when Prometheus scrapes (a few aggregate queries)."""

    def collect(self):
        now = timezone.now()
        yield from authentication_gauges(now)
        yield from credential_gauges(now)
        yield from inbox_gauges(now)
        yield from subscription_gauges(now)
        yield from task_gauges()


def authentication_gauges(now):
    by_status = GaugeMetricFamily(
        "bcconnect_authentications", "Authentications by status.", labels=["status"]
    )
    counts = dict(Authentication.objects.order_by().values_list("status").annotate(n=Count("id")))
    for status in Authentication.Status.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status
    tokens = Authentication.objects.filter(
        status__in=[Authentication.Status.CONNECTED, Authentication.Status.FAILING],
        access_token_expires_at__isnull=False,
    )
    earliest = tokens.filter(access_token_expires_at__gt=now).aggregate(
        at=Min("access_token_expires_at")
    )["at"]
    yield _single(
        "bcconnect_access_token_earliest_expiry_seconds",
        "Seconds until the earliest expiry of a valid access token (connected or failing).",
        None if earliest is None else (earliest - now).total_seconds(),
    )
    yield _single(
        "bcconnect_access_tokens_expired",
        "Connected or failing authentications whose access token has already expired.",
        tokens.filter(access_token_expires_at__lte=now).count(),
    )


def credential_gauges(now):
    secret_expiry = Authentication.objects.filter(
        credential_type=Authentication.Credential.SECRET, client_secret_expires_on__isnull=False
    ).aggregate(on=Min("client_secret_expires_on"))["on"]
    yield _single(
        "bcconnect_client_secret_days_left",
        "Days until the earliest client secret expiry (of those whose expiry date is filled in).",
        None if secret_expiry is None else (secret_expiry - timezone.localdate(now)).days,
    )
    certificate_expiry = Certificate.objects.filter(role=Certificate.Role.CURRENT).aggregate(
        at=Min("not_after")
    )["at"]
    yield _single(
        "bcconnect_certificate_days_left",
        "Days until the earliest expiry of a certificate in use.",
        None if certificate_expiry is None else (certificate_expiry - now).total_seconds() / 86400,
    )


UNDELIVERED = (
    ChangeNotification.Status.PENDING,
    ChangeNotification.Status.DELIVERING,
    ChangeNotification.Status.RETRYING,
)


def inbox_gauges(now):
    counts = dict(
        ChangeNotification.objects.order_by().values_list("status").annotate(n=Count("id"))
    )
    yield _single(
        "bcconnect_notification_inbox_depth",
        "Change notifications stored and not yet delivered (waiting, delivering, retrying).",
        sum(counts.get(status, 0) for status in UNDELIVERED),
    )
    oldest = ChangeNotification.objects.filter(status__in=UNDELIVERED).aggregate(
        at=Min("received_at")
    )["at"]
    yield _single(
        "bcconnect_notification_oldest_undelivered_seconds",
        "Age in seconds of the oldest change notification not yet delivered (0 when none).",
        0 if oldest is None else max((now - oldest).total_seconds(), 0),
    )
    yield _single(
        "bcconnect_notifications_parked",
        "Change notifications whose handler failed every attempt (replay them once fixed).",
        counts.get(ChangeNotification.Status.PARKED, 0),
    )
    yield _single(
        "bcconnect_notifications_no_handler",
        "Change notifications for which no handler is registered.",
        counts.get(ChangeNotification.Status.NO_HANDLER, 0),
    )


def subscription_gauges(now):
    by_status = GaugeMetricFamily(
        "bcconnect_subscriptions", "BC webhook subscriptions by status.", labels=["status"]
    )
    counts = dict(Subscription.objects.order_by().values_list("status").annotate(n=Count("id")))
    for status in Subscription.Status.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status
    live = Q(status__in=[Subscription.Status.ACTIVE, Subscription.Status.RENEWING])
    yield _single(
        "bcconnect_subscriptions_expiring_24h",
        "Active subscriptions that expire within 24 hours (cron renews them before).",
        Subscription.objects.filter(live, expires_at__lte=now + timedelta(hours=24)).count(),
    )


def task_gauges():
    depth = GaugeMetricFamily(
        "bcconnect_task_queue_depth", "Tasks waiting to run, per task engine.", labels=["engine"]
    )
    aliases = [
        alias
        for alias in settings.TASKS
        if type(task_backends[alias]).__module__.startswith("django_tasks_db")
    ]
    if aliases:
        from django_tasks_db.models import DBTaskResult

        ready = DBTaskResult.objects.filter(status="READY", backend_name__in=aliases)
        depth.add_metric(["database"], ready.count())
    if any(
        type(backend).__module__.startswith("django_tasks_rq") for backend in task_backends.all()
    ):
        depth.add_metric(["rq"], _rq_depth())
    yield depth


def _rq_depth():
    """Jobs queued or scheduled for later in RQ's queues; NaN when Redis does not answer (the
    readiness check says so; a scrape must not fail for it)."""
    import django_rq
    from redis.exceptions import RedisError

    try:
        queues = [django_rq.get_queue(name) for name in django_rq.settings.QUEUES]
        return sum(queue.count + queue.scheduled_job_registry.count for queue in queues)
    except RedisError:
        return float("nan")


def _single(name, documentation, value):
    """A gauge with one sample, or none when there is nothing to measure."""
    gauge = GaugeMetricFamily(name, documentation)
    if value is not None:
        gauge.add_metric([], value)
    return gauge


def exposition():
    """The text Prometheus reads: this process's (or every worker's) counts, then the state."""
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return generate_latest(REGISTRY) + generate_latest(state)
    process_files.fold_dead_processes(path)
    counted = CollectorRegistry()
    multiprocess.MultiProcessCollector(counted, path=path)
    with process_files.locked(path, exclusive=False):
        counts = generate_latest(counted)
    return counts + generate_latest(state)
