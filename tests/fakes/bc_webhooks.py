"""Business Central's webhook subscriptions, for real: handshakes, expiry, delayed delivery.

What the fake does is what BC documents ("Working with webhooks in Dynamics 365 Business
Central", v2.0, and its "Managing subscriptions" notes):

- `POST api/v2.0/subscriptions` registers a subscription only after a handshake: a real
  HTTP POST to `notificationUrl?validationToken=<random>` that must answer 200 with exactly
  the token as its body, within `handshake_timeout` (BC: 5 s). `PATCH` (renewal, with the
  ETag in If-Match) repeats the handshake and extends the expiry by three days.
- Subscriptions expire three days after their last renewal; an expired one is gone.
- At most 200 subscriptions per environment; clientState at most 2,048 characters.
- Changes are not sent at once: each notification URL collects them for `delay` (BC: 30 s),
  consecutive updates of one record become one `updated` item, items of every subscription
  on that URL go out in one POST, and more than `collection_threshold` changes (BC: 1,000)
  become one `collection` item per subscription whose resource carries
  `$filter=lastModifiedDateTime gt <time>`.
- 2xx is delivered; 408, 429, 5xx, a timeout or a refused connection are retried after
  `retry_delays` (BC: exponential, about 36 hours in all) and the subscriptions are deleted
  once those run out; any other answer deletes the subscriptions at once, without retry.

The fake keeps one data set for all environments, so a change notifies every matching
subscription whatever environment it was made through. Notification URLs must be on this
machine (`allowed_hosts`): tests reach nothing beyond 127.0.0.1.
"""

import fnmatch
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import requests

from .http import Response, json_response

MAX_SUBSCRIPTIONS = 200
MAX_CLIENT_STATE = 2048
LIFETIME = timedelta(days=3)
# BC's list of webhook-enabled v2.0 entities (webhookSupportedResources).
SUPPORTED_ENTITIES = tuple(
    """accounts companyInformation countriesRegions currencies customerPaymentJournals
    customers dimensions employees generalLedgerEntries itemCategories items journals
    paymentMethods paymentTerms purchaseInvoices salesCreditMemos salesInvoices salesOrders
    salesQuotes shipmentMethods unitsOfMeasure vendors""".split()
)
RESOURCE = re.compile(r"/?api/v2\.0/companies\(([0-9a-fA-F-]{36})\)/([A-Za-z]+)")
ONE_SUBSCRIPTION = re.compile(r"/subscriptions\('?([0-9a-fA-F]{32})'?\)")
SUPPORTED_FILTER = re.compile(r"resource\s+eq\s+'([^']*)'")
SUPPORTED_PATH = re.compile(r"/companies\(([^)]*)\)/webhookSupportedResources")
RETRYABLE = {408, 429}


class WebhookError(Exception):
    """A refusal BC answers with `{"error": {"code", "message"}}`."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(err):
    return json_response({"error": {"code": err.code, "message": err.message}}, err.status)


def _json(request):
    try:
        return request.json()
    except ValueError:
        raise WebhookError(400, "BadRequest", "Invalid Request Body.") from None


def _stamp(moment):
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Subscription:
    id: str
    tenant: str
    environment: str
    notification_url: str
    resource: str
    company_id: str
    entity: str
    client_state: str
    user_id: str
    created_at: datetime
    modified_at: datetime
    expires_at: datetime
    version: int = 1

    @property
    def etag(self):
        return f'W/"{self.id}-{self.version}"'

    def as_json(self):
        return {
            "@odata.etag": self.etag,
            "subscriptionId": self.id,
            "notificationUrl": self.notification_url,
            "resource": self.resource,
            "userId": self.user_id,
            "lastModifiedDateTime": _stamp(self.modified_at),
            "clientState": self.client_state,
            "expirationDateTime": _stamp(self.expires_at),
            "systemCreatedAt": _stamp(self.created_at),
            "systemCreatedBy": self.user_id,
            "systemModifiedAt": _stamp(self.modified_at),
            "systemModifiedBy": self.user_id,
        }


@dataclass
class Batch:
    """The items collected for one notification URL, then its delivery attempts."""

    url: str
    due: float  # time.monotonic() when it may go out
    items: list = field(default_factory=list)  # dicts without clientState/expiry yet
    attempts: int = 0


@dataclass
class Delivery:
    """One POST of notifications: what was sent and how the receiver answered."""

    url: str
    body: dict
    attempt: int
    status: int | None  # None when no HTTP answer came (timeout, refused)
    error: str = ""


@dataclass
class Handshake:
    url: str
    token: str
    status: int | None
    accepted: bool
    error: str = ""


class FakeWebhooks:
    """Subscriptions of the fake BC and the background thread that delivers notifications."""

    def __init__(self, company_ids):
        self.company_ids = company_ids  # callable: the ids of the companies the fake serves
        self.lock = threading.Condition(threading.RLock())
        self.subscriptions = {}  # id -> Subscription
        self.collecting = {}  # url -> Batch still open for changes
        self.outbox = {}  # url -> deque of closed Batch, oldest first
        self.sending = None  # the Batch being posted right now
        self.deliveries = []  # every Delivery attempt, in order
        self.handshakes = []  # every Handshake, in order
        self.removed = []  # (id, why): expired, refused, retries, deleted, dropped
        # Configuration (BC's values in comments); tests shorten the times.
        self.delay = 0.05  # BC: 30 s
        self.collection_threshold = 1000
        self.handshake_timeout = 5.0
        self.notification_timeout = 5.0  # BC: 30 s
        self.retry_delays = (0.05, 0.1, 0.2, 0.4, 0.8)  # BC: at least 5, about 36 h in all
        self.max_subscriptions = MAX_SUBSCRIPTIONS
        self.lifetime = LIFETIME
        self.allowed_hosts = {"127.0.0.1", "localhost", "::1"}
        self.clock = lambda: datetime.now(UTC)
        self.offset = timedelta(0)
        self._thread = None
        self._stopping = False
        self.failure = None  # What killed the delivery thread, if anything did

    # --- time -------------------------------------------------------------------------

    def now(self):
        return self.clock() + self.offset

    def advance(self, **delta):
        """Move the fake's calendar forward (`advance(days=3)`): subscriptions expire."""
        with self.lock:
            self.offset += timedelta(**delta)

    # --- the API ----------------------------------------------------------------------

    def answer(self, request, rest, *, tenant, environment, user_key):
        """Answer `api/v2.0/subscriptions...` as BC does, refusals included."""
        try:
            status, payload, headers = self._route(
                request, rest, tenant=tenant, environment=environment, user_key=user_key
            )
        except WebhookError as err:
            return _error(err)
        if payload is None:
            return Response(status, b"", headers)
        return json_response(payload, status, headers)

    def answer_supported(self, request, rest):
        """Answer `api/microsoft/runtime/beta/companies({id})/webhookSupportedResources`."""
        match = SUPPORTED_PATH.fullmatch(rest.rstrip("/"))
        try:
            if not match:
                raise WebhookError(404, "BadRequest_NotFound", f"No resource at {rest or '/'}.")
            if request.method != "GET":
                raise WebhookError(
                    405, "BadRequest_MethodNotAllowed", f"{request.method} is not allowed here."
                )
            return json_response(self.supported_resources(match.group(1), request.query))
        except WebhookError as err:
            return _error(err)

    def _route(self, request, rest, *, tenant, environment, user_key):
        method = request.method
        if rest.rstrip("/") == "/subscriptions":
            if method == "GET":
                return 200, {"value": [s.as_json() for s in self.listed(tenant, environment)]}, {}
            if method == "POST":
                created = self.create(
                    _json(request), tenant=tenant, environment=environment, user_key=user_key
                )
                return 201, created.as_json(), {"ETag": created.etag}
            raise WebhookError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")
        match = ONE_SUBSCRIPTION.fullmatch(rest.rstrip("/"))
        if not match:
            raise WebhookError(404, "BadRequest_NotFound", f"No resource at {rest}.")
        subscription_id = match.group(1).lower()
        if method == "GET":
            return 200, self.get(subscription_id, tenant, environment).as_json(), {}
        if method == "PATCH":
            renewed = self.renew(
                subscription_id, _json(request), request.header("if-match"), tenant, environment
            )
            return 200, renewed.as_json(), {"ETag": renewed.etag}
        if method == "DELETE":
            self.delete(subscription_id, request.header("if-match"), tenant, environment)
            return 204, None, {}
        raise WebhookError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")

    def listed(self, tenant, environment):
        with self.lock:
            self._purge()
            return [
                s
                for s in self.subscriptions.values()
                if (s.tenant, s.environment) == (tenant, environment)
            ]

    def get(self, subscription_id, tenant, environment):
        with self.lock:
            self._purge()
            subscription = self.subscriptions.get(subscription_id)
        if subscription is None or (subscription.tenant, subscription.environment) != (
            tenant,
            environment,
        ):
            raise WebhookError(
                404,
                "BadRequest_NotFound",
                f"The subscription '{subscription_id}' does not exist.",
            )
        return subscription

    def create(self, body, *, tenant, environment, user_key):
        if not isinstance(body, dict):
            raise WebhookError(400, "BadRequest", "Invalid Request Body.")
        url = self._notification_url(body.get("notificationUrl"))
        company_id, entity, resource = self._resource(body.get("resource"))
        client_state = self._client_state(body.get("clientState", ""))
        self._check_room(tenant, environment)
        self._handshake(url)  # Outside the lock: it waits on the subscriber.
        now = self.now()
        subscription = Subscription(
            id=uuid.uuid4().hex,
            tenant=tenant,
            environment=environment,
            notification_url=url,
            resource=resource,
            company_id=company_id.lower(),
            entity=entity,
            client_state=client_state,
            user_id=str(uuid.uuid5(uuid.NAMESPACE_URL, user_key)),
            created_at=now,
            modified_at=now,
            expires_at=now + self.lifetime,
        )
        with self.lock:
            self._check_room(tenant, environment)  # Again: others may have filled it meanwhile.
            self.subscriptions[subscription.id] = subscription
            self._start()
        return subscription

    def renew(self, subscription_id, body, if_match, tenant, environment):
        if not isinstance(body, dict):
            raise WebhookError(400, "BadRequest", "Invalid Request Body.")
        subscription = self.get(subscription_id, tenant, environment)
        self._check_etag(subscription, if_match)
        if "resource" in body and body["resource"] != subscription.resource:
            raise WebhookError(
                400, "BadRequest", "The resource of a subscription cannot be changed."
            )
        url = subscription.notification_url
        if "notificationUrl" in body:
            url = self._notification_url(body["notificationUrl"])
        client_state = subscription.client_state
        if "clientState" in body:
            client_state = self._client_state(body["clientState"])
        self._handshake(url)
        with self.lock:
            current = self.get(subscription_id, tenant, environment)
            self._check_etag(current, if_match)  # Fenced: a renewal that raced us wins once.
            now = self.now()
            current.notification_url, current.client_state = url, client_state
            current.modified_at, current.expires_at = now, now + self.lifetime
            current.version += 1
        return current

    def delete(self, subscription_id, if_match, tenant, environment):
        with self.lock:
            subscription = self.get(subscription_id, tenant, environment)
            self._check_etag(subscription, if_match)
            self._remove(subscription_id, "deleted")

    def supported_resources(self, company_key, query):
        """`api/microsoft/runtime/beta/companies({id})/webhookSupportedResources`."""
        if company_key.strip("'").lower() not in self.company_ids():
            raise WebhookError(
                404, "BadRequest_NotFound", f"The company '{company_key}' does not exist."
            )
        resources = [f"v2.0/{entity}" for entity in SUPPORTED_ENTITIES]
        expression = query.get("$filter")
        if expression:
            match = SUPPORTED_FILTER.fullmatch(expression.strip())
            if not match:
                raise WebhookError(400, "BadRequest", f"Invalid filter expression: {expression}")
            resources = [r for r in resources if fnmatch.fnmatchcase(r, match.group(1))]
        return {"value": [{"resource": r} for r in resources]}

    # --- validation -------------------------------------------------------------------

    def _notification_url(self, url):
        parts = urlsplit(url) if isinstance(url, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookError(400, "BadRequest", "The notificationUrl is not a valid URL.")
        if parts.hostname not in self.allowed_hosts:
            raise WebhookError(
                400,
                "BadRequest",
                f"The fake BC notifies only this machine, not {parts.hostname}.",
            )
        return url

    def _resource(self, resource):
        match = RESOURCE.fullmatch(resource) if isinstance(resource, str) else None
        if not match:
            raise WebhookError(
                400,
                "BadRequest",
                f"The resource '{resource}' is not a valid resource for a subscription.",
            )
        company_id, entity = match.group(1).lower(), match.group(2)
        if entity not in SUPPORTED_ENTITIES:
            raise WebhookError(
                400, "BadRequest", f"The resource '{resource}' does not support webhooks."
            )
        if company_id not in self.company_ids():
            raise WebhookError(
                400, "BadRequest_NotFound", f"The company '{company_id}' does not exist."
            )
        return company_id, entity, resource

    def _client_state(self, value):
        if value is None:
            return ""
        if not isinstance(value, str):
            raise WebhookError(400, "BadRequest", "The clientState must be a string.")
        if len(value) > MAX_CLIENT_STATE:
            raise WebhookError(
                400,
                "Application_StringExceededLength",
                f"The length of the string is {len(value)}, but it must be less than or "
                f"equal to {MAX_CLIENT_STATE} characters.",
            )
        return value

    def _check_room(self, tenant, environment):
        if len(self.listed(tenant, environment)) >= self.max_subscriptions:
            raise WebhookError(
                400,
                "BadRequest",
                f"The maximum number of subscriptions ({self.max_subscriptions}) "
                "has been reached for this environment.",
            )

    def _check_etag(self, subscription, if_match):
        if not if_match:
            raise WebhookError(
                400,
                "BadRequest",
                "Could not validate the client concurrency token required by the service. "
                "Please provide a valid token in the client request.",
            )
        if if_match not in ("*", subscription.etag):
            raise WebhookError(
                412, "PreconditionFailed", "The subscription was changed since it was read."
            )

    def _handshake(self, url):
        """POST `?validationToken=`; anything but 200 with exactly the token refuses."""
        token = secrets.token_urlsafe(32)
        target = url + ("&" if urlsplit(url).query else "?") + urlencode({"validationToken": token})
        try:
            answer = requests.post(
                target, data=b"", timeout=self.handshake_timeout, allow_redirects=False
            )
        except requests.RequestException as err:
            self._note_handshake(Handshake(url, token, None, False, type(err).__name__))
            raise WebhookError(
                400,
                "BadRequest",
                "The subscription was not validated: the notification URL did not answer "
                "the handshake in time.",
            ) from None
        accepted = answer.status_code == 200 and answer.text == token
        self._note_handshake(Handshake(url, token, answer.status_code, accepted))
        if not accepted:
            raise WebhookError(
                400,
                "BadRequest",
                "The subscription was not validated: the notification URL must answer the "
                f"handshake with 200 and the validationToken (it answered {answer.status_code}).",
            )

    def _note_handshake(self, handshake):
        with self.lock:
            self.handshakes.append(handshake)

    def _purge(self):
        now = self.now()
        for subscription in list(self.subscriptions.values()):
            if subscription.expires_at <= now:
                self._remove(subscription.id, "expired")

    def _remove(self, subscription_id, why):
        if self.subscriptions.pop(subscription_id, None) is not None:
            self.removed.append((subscription_id, why))

    # --- changes ----------------------------------------------------------------------

    def record(self, *, company_id, entity, record_id, change_type, modified):
        """A record changed through the fake's API: queue it for every matching subscription."""
        with self.lock:
            self._purge()
            for subscription in self.subscriptions.values():
                if (subscription.company_id, subscription.entity) == (company_id, entity):
                    self._collect(subscription, record_id, change_type, modified)
            self.lock.notify_all()

    def _collect(self, subscription, record_id, change_type, modified):
        url = subscription.notification_url
        batch = self.collecting.get(url)
        if batch is None:
            batch = self.collecting[url] = Batch(url, time.monotonic() + self.delay)
        resource = (
            f"api/v2.0/companies({subscription.company_id})/{subscription.entity}({record_id})"
        )
        item = {
            "subscriptionId": subscription.id,
            "resource": resource,
            "changeType": change_type,
            "lastModifiedDateTime": modified,
        }
        last = next(
            (i for i in reversed(batch.items) if i["subscriptionId"] == subscription.id), None
        )
        if last and last["resource"] == resource and last["changeType"] == change_type == "updated":
            last["lastModifiedDateTime"] = modified  # Consecutive updates: one notification.
        else:
            batch.items.append(item)

    def _close(self, batch):
        """The delay is over: more than the threshold becomes one collection per subscription."""
        if len(batch.items) <= self.collection_threshold:
            return batch
        collections = {}
        for item in batch.items:
            collections.setdefault(item["subscriptionId"], []).append(item)
        batch.items = [self._collection(id_, items) for id_, items in collections.items()]
        return batch

    def _collection(self, subscription_id, items):
        first = min(item["lastModifiedDateTime"] for item in items)
        since = datetime.fromisoformat(first.replace("Z", "+00:00")).replace(microsecond=0)
        since -= timedelta(seconds=1)  # `gt`: whole seconds, so the first change still matches.
        base = items[0]["resource"].rsplit("(", 1)[0]
        return {
            "subscriptionId": subscription_id,
            "resource": f"/{base}?$filter="
            + quote(f"lastModifiedDateTime gt {_stamp(since)}", safe=":"),
            "changeType": "collection",
            "lastModifiedDateTime": max(item["lastModifiedDateTime"] for item in items),
        }

    # --- delivery ---------------------------------------------------------------------

    def _start(self):
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="fake-bc-webhooks", daemon=True)
            self._thread.start()

    def _run(self):
        try:
            self._deliver_until_stopped()
        except Exception as err:  # wait_idle() raises it: a test must not wait in vain.
            with self.lock:
                self.failure = err
                self.lock.notify_all()

    def _deliver_until_stopped(self):
        while True:
            with self.lock:
                batch, wait = self._next_due()
                while batch is None and not self._stopping:
                    self.lock.wait(wait)
                    batch, wait = self._next_due()
                if self._stopping:
                    return
                self.sending = batch
            try:
                self._deliver(batch)
            finally:
                with self.lock:
                    self.sending = None
                    self.lock.notify_all()

    def _next_due(self):
        """The oldest batch that may go out now, else None and how long to wait for one."""
        now = time.monotonic()
        for url, batch in list(self.collecting.items()):
            if batch.due <= now:
                del self.collecting[url]
                self.outbox.setdefault(url, deque()).append(self._close(batch))
        waits = [batch.due - now for batch in self.collecting.values()]
        for url, queue in list(self.outbox.items()):
            if not queue:
                del self.outbox[url]
            elif queue[0].due <= now:
                return queue.popleft(), None
            else:
                waits.append(queue[0].due - now)
        return None, (max(0.0, min(waits)) if waits else None)

    def _deliver(self, batch):
        body = self._body(batch)
        if not body["value"]:
            return  # Every subscription in it is gone: BC has nobody to notify.
        batch.attempts += 1
        status, error = None, ""
        try:
            answer = requests.post(
                batch.url, json=body, timeout=self.notification_timeout, allow_redirects=False
            )
            status = answer.status_code
        except requests.RequestException as err:
            error = type(err).__name__
        with self.lock:
            self.deliveries.append(Delivery(batch.url, body, batch.attempts, status, error))
            if status is not None and 200 <= status < 300:
                return
            ids = {item["subscriptionId"] for item in body["value"]}
            if status is not None and status not in RETRYABLE and status < 500:
                self._remove_all(ids, "refused")
            elif batch.attempts > len(self.retry_delays):
                self._remove_all(ids, "retries")
            else:
                batch.due = time.monotonic() + self.retry_delays[batch.attempts - 1]
                self.outbox.setdefault(batch.url, deque()).appendleft(batch)

    def _remove_all(self, ids, why):
        for subscription_id in ids:
            self._remove(subscription_id, why)

    def _body(self, batch):
        with self.lock:
            self._purge()
            value = []
            for item in batch.items:
                subscription = self.subscriptions.get(item["subscriptionId"])
                if subscription is None:
                    continue
                value.append(
                    {
                        "subscriptionId": subscription.id,
                        "clientState": subscription.client_state,
                        "expirationDateTime": _stamp(subscription.expires_at),
                        **{k: v for k, v in item.items() if k != "subscriptionId"},
                    }
                )
        return {"value": value}

    # --- for tests --------------------------------------------------------------------

    def drop(self, subscription_id):
        """Delete a subscription as BC does on its own (after a refused delivery): silently."""
        with self.lock:
            self._remove(subscription_id, "dropped")

    def wait_idle(self, timeout=5.0):
        """Block until every collected change was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.failure is None and (
                self.collecting or any(self.outbox.values()) or self.sending
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.05))
            if self.failure is not None:
                raise RuntimeError("The fake BC's delivery thread died.") from self.failure
        return True

    def stop(self, timeout=5.0):
        """Stop delivering and join the thread (undelivered notifications are dropped)."""
        with self.lock:
            self._stopping = True
            self.lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
