"""Change-notification test helpers: subscriptions, BC's notification bodies, the worker."""

import json
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from authentications.webhooks.models import Subscription

COMPANY_ID = "11111111-2222-3333-4444-555555555555"
NOTIFICATIONS_PATH = "/authentications/notifications/"
COMPANY = {"id": COMPANY_ID, "name": "CRONUS USA, Inc.", "displayName": "CRONUS USA, Inc."}


def make_subscription(authentication, **fields):
    """A subscription BC already created (active), with a clientState only this test knows."""
    values = {
        "company_id": COMPANY_ID,
        "company_name": "CRONUS USA, Inc.",
        "entity": "customers",
        "subscription_id": secrets.token_hex(16),
        "client_state": "state-" + secrets.token_urlsafe(24),
        "status": Subscription.Status.ACTIVE,
        "etag": 'W/"1"',
        "expires_at": timezone.now() + timedelta(days=3),
        **fields,
    }
    return Subscription.objects.create(authentication=authentication, **values)


def notification_item(subscription, record_id="", *, change_type="updated", **overrides):
    """One item of BC's notification body for `subscription`."""
    resource = f"api/v2.0/companies({subscription.company_id})/{subscription.entity}"
    item = {
        "subscriptionId": subscription.subscription_id,
        "clientState": str(subscription.client_state),
        "expirationDateTime": "2030-01-01T00:00:00Z",
        "resource": f"{resource}({record_id})" if record_id else resource,
        "changeType": change_type,
        "lastModifiedDateTime": f"2026-11-30T10:00:{secrets.randbelow(60):02d}."
        f"{secrets.randbelow(10**6):06d}Z",
    }
    item.update(overrides)
    return item


def post_notifications(client, items, **extra):
    """POST `items` to the notification endpoint as BC does (Django test client)."""
    return client.post(
        NOTIFICATIONS_PATH, json.dumps({"value": items}), content_type="application/json", **extra
    )


# The task engine this run uses: the database (the default) or RQ on Redis, when .ci/run
# repeats the `engines` tests with TASKS_BACKEND=django_tasks_rq.RQBackend.
RQ = "django_tasks_rq.RQBackend"


def on_rq():
    return settings.TASKS_BACKEND == RQ


def worker_command(*, batch=True):
    """The `manage.py` words that start this run's worker; `batch` stops it once idle."""
    if on_rq():
        command = ["rqworker", "--job-class", "django_tasks_rq.Job", "--with-scheduler"]
        return [*command, "--burst"] if batch else command
    command = ["db_worker", "--no-startup-delay", "--interval", "0" if batch else "0.05"]
    return [*command, "--batch"] if batch else command


def run_worker():
    """Run this run's task worker until the queue is empty, in this process (RQ's simple
    worker: no fork, so it sees the test's transaction as db_worker does)."""
    if on_rq():
        call_command(*worker_command(), "--worker-class", "rq.worker.SimpleWorker", verbosity=0)
    else:
        call_command(*worker_command(), verbosity=0)


def make_deferred_tasks_due():
    """Bring every task queued for later (a retry's) forward to now, on either engine."""
    if on_rq():
        import django_rq

        queue = django_rq.get_queue("default")
        for job_id in queue.scheduled_job_registry.get_job_ids():
            queue.scheduled_job_registry.remove(job_id)
            queue.enqueue_job(queue.fetch_job(job_id))
    else:
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.filter(run_after__gt=timezone.now()).update(run_after=timezone.now())


def forget_queued_tasks():
    """Empty the queue, as a Redis restarted with nothing on disk or a wiped task table would
    (RQ: this queue's jobs only, never the rest of the Redis database)."""
    if on_rq():
        import django_rq

        queue = django_rq.get_queue("default")
        queue.empty()
        for job_id in queue.scheduled_job_registry.get_job_ids():
            queue.scheduled_job_registry.remove(job_id, delete_job=True)
    else:
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.all().delete()


class FakeSubscriptionsAtBC:
    """BC's subscriptions API on `responses`: handshake through the Django test client."""

    def __init__(self, mocked, base_url, *, existing=0):
        self.base_url, self.requests, self.handshakes = base_url, [], []
        self.existing = existing
        self.answer_status = None
        self.forgotten = set()
        root = re.escape(base_url)
        mocked.add_callback("POST", re.compile(root + r"/subscriptions$"), self.create)
        mocked.add_callback("PATCH", re.compile(root + r"/subscriptions\('.*'\)$"), self.renew)
        mocked.add_callback("DELETE", re.compile(root + r"/subscriptions\('.*'\)$"), self.delete)
        mocked.add_callback("GET", re.compile(root + r"/subscriptions$"), self.list)
        mocked.add_callback("GET", re.compile(root + r"/subscriptions\('.*'\)$"), self.one)
        mocked.get(f"{base_url}/companies", json={"value": [COMPANY]})
        environment = base_url.removesuffix("/api/v2.0")
        mocked.get(
            f"{environment}/api/microsoft/runtime/beta/companies({COMPANY_ID})"
            "/webhookSupportedResources",
            json={"value": [{"resource": "v2.0/customers"}, {"resource": "v2.0/items"}]},
        )

    def handshake(self):
        answer = Client().post(f"{NOTIFICATIONS_PATH}?validationToken=tok-{len(self.handshakes)}")
        self.handshakes.append(answer.status_code)
        return (
            answer.status_code == 200
            and answer.content == f"tok-{len(self.handshakes) - 1}".encode()
        )

    def list(self, request):
        return (
            200,
            {},
            json.dumps({"value": [{"subscriptionId": str(n)} for n in range(self.existing)]}),
        )

    def one(self, request):
        return 200, {}, json.dumps({"@odata.etag": 'W/"1"'})

    def create(self, request):
        self.requests.append(request)
        if self.answer_status:
            return self.answer_status, {}, json.dumps({"error": {"code": "X", "message": "no"}})
        if not self.handshake():
            return 400, {}, json.dumps({"error": {"code": "BadRequest", "message": "handshake"}})
        body = json.loads(request.body)
        return 201, {}, json.dumps(self._subscription("sub-1", body, etag='W/"1"'))

    def renew(self, request):
        self.requests.append(request)
        if self.answer_status:
            return self.answer_status, {}, json.dumps({"error": {"code": "X", "message": "gone"}})
        if any(f"('{gone}')" in request.url for gone in self.forgotten):
            return 404, {}, json.dumps({"error": {"code": "NotFound", "message": "gone"}})
        if request.headers.get("If-Match") != 'W/"1"':
            return 412, {}, json.dumps({"error": {"code": "PreconditionFailed", "message": "etag"}})
        self.handshake()
        return (
            200,
            {},
            json.dumps(self._subscription("sub-1", json.loads(request.body), etag='W/"2"')),
        )

    def delete(self, request):
        self.requests.append(request)
        return (self.answer_status or 204), {}, ""

    @staticmethod
    def _subscription(subscription_id, body, *, etag):
        expires = (timezone.now() + timedelta(days=3)).isoformat()
        return {
            **body,
            "subscriptionId": subscription_id,
            "expirationDateTime": expires,
            "@odata.etag": etag,
        }
