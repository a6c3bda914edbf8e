"""A fake Business Central API v2.0, strict where real BC is strict.

Bearer tokens are checked against the fake Entra (401 when unknown or expired); each token
user gets at most 5 requests at a time (429 beyond); pages follow `odata.maxpagesize` up to
20,000 with `@odata.nextLink`; PATCH and DELETE need the entity's ETag; `$batch` takes at
most 100 operations and `Isolation: snapshot` rolls a failed batch back. Customers are
generated from their position on demand, so 200,000 of them cost no memory until changed.
Next to `api/v2.0`, the environment's `ODataV4` web services answer too (the Customer_Card
page, read-only), so paths under the environment root can be tested for real, and so does
a custom API (`api/contoso/sales/v1.0`, the same companies and customers). Pages take
`$select`, `$expand=customerFinancialDetail` and `$orderby`; each request's headers are
recorded (without the token), `Data-Access-Intent` included. Permissions are per user and
resource (403 as BC words it), and a company that is not in the environment is a 400
`BadRequest_ResourceNotFound`.
"""

import base64
import copy
import gzip
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from . import bc_entities
from .bc_webhooks import FakeWebhooks
from .entra import TENANT_ID
from .http import DropConnection, Request, Response, json_response

MAX_PAGE_SIZE = 20_000
MAX_BATCH = 100
MAX_CONCURRENT = 5
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
COMPANY_NAMES = ("CRONUS USA, Inc.", "CRONUS Canada, Inc.", "My Company")
CITIES = ("Atlanta", "Chicago", "Miami", "Seattle", "Boston")
WRITABLE = {
    "displayName",
    "type",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "country",
    "postalCode",
    "phoneNumber",
    "email",
    "website",
    "creditLimit",
    "taxLiable",
    "blocked",
}
CUSTOM_API = "api/contoso/sales/v1.0"
ROUTE = re.compile(
    r"/v2\.0/([^/]+)/([^/]+)/(api/v2\.0|api/contoso/sales/v1\.0|ODataV4|api/microsoft/runtime/beta)(/.*)?"
)
EXPANDABLE = "customerFinancialDetail"
ORDER_BY = re.compile(r"(\w+)(?:\s+(asc|desc))?")
# What BC answers when a permission set lacks read access to a table.
TABLES = {"customers": "TableData 18 Customer", "companies": "TableData 2000000006 Company"}
CUSTOMER_CARD = re.compile(r"/Company\('((?:[^']|'')*)'\)/Customer_Card")
DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")
ENTITY = re.compile(r"/?([A-Za-z]+)(?:\(([^)]*)\))?")
CONDITION = re.compile(
    r"(?:(\w+)\s+(eq|ne|gt|ge|lt|le)\s+('(?:[^']|'')*'|[\w.:+-]+))"
    r"|(?:(startswith|contains)\((\w+),\s*('(?:[^']|'')*')\))"
)


class BCError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def bc_error(status, code, message, headers=None):
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def _etag(key, version):
    raw = f"{len(key)};{key};{version};".encode()
    return 'W/"' + base64.b64encode(raw).decode() + '"'


def _literal(text):
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if DATETIME.fullmatch(text):  # OData v4: a DateTimeOffset literal goes unquoted.
        return datetime.fromisoformat(text)
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def parse_filter(expression):
    """Conditions joined by `and`: `field op literal`, `startswith(f,'x')`, `contains(...)`."""
    tests = []
    for clause in re.split(r"\s+and\s+", expression.strip()):
        match = CONDITION.fullmatch(clause.strip())
        if not match:
            raise BCError(400, "BadRequest", f"Invalid filter expression: {clause}")
        if match.group(1):
            field_, op, value = match.group(1), match.group(2), _literal(match.group(3))
        else:
            op, field_, value = match.group(4), match.group(5), _literal(match.group(6))
        tests.append((field_, op, value))

    def matches(entity):
        for field_, op, value in tests:
            if field_ not in entity:
                raise BCError(
                    400,
                    "BadRequest_NotFound",
                    f"Could not find a property named '{field_}' on type 'Microsoft.NAV.customer'.",
                )
            have = entity[field_]
            if isinstance(value, datetime):
                have = datetime.fromisoformat(have)
            if op == "startswith" and not str(have).startswith(str(value)):
                return False
            if op == "contains" and str(value) not in str(have):
                return False
            if op in ("eq", "ne", "gt", "ge", "lt", "le"):
                compare = {
                    "eq": have == value,
                    "ne": have != value,
                    "gt": have > value,
                    "ge": have >= value,
                    "lt": have < value,
                    "le": have <= value,
                }
                if not compare[op]:
                    return False
        return True

    return matches


class _Company:
    """One company's customers: `generated` lazily made ones, plus what was changed."""

    def __init__(self, index, name, customers):
        self.index = index
        self.id = f"{index + 1:08x}-e0d4-4f5a-9a1b-0000c0ffee00"
        self.name = name
        self.generated = customers
        self.changed = {}  # id -> customer dict (edited or created)
        self.deleted = set()
        self.created = []  # ids of customers created through the API, in order

    def entity(self):
        return {
            "id": self.id,
            "systemVersion": "24.0.16410.18040",
            "timestamp": 1000 + self.index,
            "name": self.name,
            "displayName": self.name,
            "businessProfileId": "",
            "systemCreatedAt": EPOCH.isoformat().replace("+00:00", "Z"),
            "systemCreatedBy": "00000000-0000-0000-0000-000000000001",
            "systemModifiedAt": EPOCH.isoformat().replace("+00:00", "Z"),
            "systemModifiedBy": "00000000-0000-0000-0000-000000000001",
        }

    def customer_id(self, position):
        return f"{position:08x}-{self.index:04x}-4000-8000-00000000c0de"

    def generate(self, position):
        stamp = (EPOCH + timedelta(seconds=position)).isoformat().replace("+00:00", "Z")
        customer_id = self.customer_id(position)
        return {
            "@odata.etag": _etag(customer_id, 1),
            "id": customer_id,
            "number": f"C{position + 1:06d}",
            "displayName": f"Customer {position + 1}",
            "type": "Company",
            "addressLine1": f"{position % 997 + 1} Main Street",
            "addressLine2": "",
            "city": CITIES[position % len(CITIES)],
            "state": "GA",
            "country": "US",
            "postalCode": f"{30000 + position % 9999}",
            "phoneNumber": f"555-{position % 10000:04d}",
            "email": f"customer{position + 1}@example.com",
            "website": "",
            "salespersonCode": "",
            "balanceDue": 0,
            "creditLimit": 0,
            "taxLiable": False,
            "taxAreaId": "00000000-0000-0000-0000-000000000000",
            "taxAreaDisplayName": "",
            "taxRegistrationNumber": "",
            "currencyId": "00000000-0000-0000-0000-000000000000",
            "currencyCode": "USD",
            "paymentTermsId": "00000000-0000-0000-0000-000000000000",
            "shipmentMethodId": "00000000-0000-0000-0000-000000000000",
            "paymentMethodId": "00000000-0000-0000-0000-000000000000",
            "blocked": " ",
            "lastModifiedDateTime": stamp,
        }

    def position_of(self, customer_id):
        if customer_id in self.created:
            return self.generated + self.created.index(customer_id)
        match = re.fullmatch(r"([0-9a-f]{8})-([0-9a-f]{4})-4000-8000-00000000c0de", customer_id)
        if match and int(match.group(2), 16) == self.index:
            position = int(match.group(1), 16)
            if position < self.generated:
                return position
        return None

    def at(self, position):
        """The customer at `position`, or None when deleted or past the end."""
        if position < self.generated:
            customer_id = self.customer_id(position)
            if customer_id in self.deleted:
                return None
            return self.changed.get(customer_id) or self.generate(position)
        extra = position - self.generated
        if extra < len(self.created):
            return self.changed.get(self.created[extra])
        return None

    @property
    def end(self):
        return self.generated + len(self.created)

    def get(self, customer_id):
        position = self.position_of(customer_id)
        return None if position is None else self.at(position)

    def snapshot(self):
        return (copy.deepcopy(self.changed), set(self.deleted), list(self.created))

    def restore(self, snapshot):
        self.changed, self.deleted, self.created = snapshot


class FakeBusinessCentral:
    def __init__(self, *, customers=50, environments=("Production", "Sandbox")):
        self.lock = threading.RLock()
        self.fake = None
        self.environment_names = list(environments)
        self.companies = [
            _Company(index, name, customers if index == 0 else 3)
            for index, name in enumerate(COMPANY_NAMES)
        ]
        self.unlicensed_users = set()  # UPNs that BC refuses: no license assigned.
        # (tenant GUID, client ID) pairs with a Microsoft Entra Applications card: BC refuses
        # an app-only token without one. The home tenant has a card for every app.
        self.entra_applications = set()
        self.requests = []  # (method, path, raw query) of each request received
        self.in_flight = {}
        self.max_in_flight = {}  # per token user: the most requests at once seen
        self.max_concurrent = MAX_CONCURRENT
        self.latency = 0.0
        # ("status", code[, headers]) / ("drop",) / ("sleep", s) / ("drop_after",): the
        # last one runs the request, then drops the connection (applied, answer lost).
        # Faults in the answer's body (see `_spoil`), each after running the request:
        # ("cut_body",) / ("cut_json",) / ("bad_gzip",) / ("html",) / ("answer", payload).
        self.faults = []
        self.next_link = None  # When set, every page links here (a hostile nextLink).
        self.webhooks = FakeWebhooks(lambda: {company.id for company in self.companies})
        self._held_changes = None  # During a $batch: its changes, notified once it commits.
        self.headers_seen = []  # (method, path, headers without Authorization) per request
        self.denied = {}  # UPN -> resource names ("customers") the user may not touch

    def bind(self, fake):
        """Reach the fake Entra (to check bearer tokens); tests reach us as `fake.bc`."""
        self.fake = fake
        fake.bc = self
        fake.webhooks = self.webhooks

    def stop(self):
        self.webhooks.stop()

    # --- configuration for tests -------------------------------------------------------

    def fail_next(self, *faults):
        with self.lock:
            self.faults.extend(faults)

    def has_entra_application(self, tid, client_id):
        return tid == TENANT_ID or (tid, client_id) in self.entra_applications

    def base_url(self, environment="Production", tenant=TENANT_ID):
        return f"{self.fake.url}/v2.0/{tenant}/{environment}/api/v2.0"

    @property
    def company(self):
        return self.companies[0]

    def count(self, method=None, path_contains=""):
        return sum(
            1
            for m, path, _ in self.requests
            if (method is None or m == method) and path_contains in path
        )

    # --- entry point -------------------------------------------------------------------

    def handle(self, request):
        route = ROUTE.fullmatch(request.path)
        is_admin = request.path.rstrip("/") in ("/environments/v1.2", "/environments/v1.1")
        if not route and not is_admin:
            return None
        with self.lock:
            self.requests.append((request.method, request.path, getattr(request, "raw_query", "")))
            seen = {k: v for k, v in request.headers.items() if k != "authorization"}
            self.headers_seen.append((request.method, request.path, seen))
            fault = self.faults.pop(0) if self.faults else None
        headers = {"request-id": str(uuid.uuid4())}
        if fault and fault[0] == "sleep":  # A slow answer (the client's read timeout).
            time.sleep(fault[1])
        elif fault and fault[0] not in ("drop_after", *BODY_FAULTS):
            return self._fault(fault, headers)
        user, problem = self._authenticate(request)
        if problem:
            return problem
        if not self._enter(user):
            return bc_error(
                429,
                "Application_TooManyRequests",
                "Too many requests reached. Actual (6). Maximum (5).",
                {"Retry-After": "1", **headers},
            )
        try:
            if self.latency:  # Inside the in-flight window, like a slow BC query.
                time.sleep(self.latency)
            response = self._answer(request, route, user)
        except BCError as err:
            response = bc_error(err.status, err.code, err.message, err.headers)
        finally:
            self._leave(user)
        response.headers.update(headers)
        if fault and fault[0] == "drop_after":
            raise DropConnection()
        if fault and fault[0] in BODY_FAULTS:
            return _spoil(response, fault)
        return response

    def _answer(self, request, route, user):
        if route is None:
            return json_response({"value": self.environments(user)})
        tenant, environment, api, rest = route.groups(default="")
        if user["tid"] != tenant and tenant.lower() != "contoso.onmicrosoft.com":
            raise BCError(
                401, "Authentication_InvalidCredentials", "The token is for another tenant."
            )
        if environment not in self.environment_names:
            raise BCError(404, "NoEnvironment", f"Environment '{environment}' was not found.")
        self._check_permission(user, rest, request.method)
        if api == "ODataV4":
            return self.odata(request.method, rest, request)
        if api == "api/microsoft/runtime/beta":
            return self.webhooks.answer_supported(request, rest)
        if re.match(r"/subscriptions\b", rest):
            return self.webhooks.answer(
                request, rest, tenant=user["tid"], environment=environment, user_key=user["key"]
            )
        if rest.rstrip("/") == "/$batch" and request.method == "POST":
            return self.batch(request, route, user)
        return self.resource(request.method, rest, request)

    def _check_permission(self, user, rest, method):
        denied = self.denied.get(user["key"].lower(), ())
        for name in denied:
            if re.search(rf"/{name}\b", rest or ""):
                action = "Read" if method == "GET" else "Modify"
                raise BCError(
                    403,
                    "Internal_ServerError",
                    "Sorry, the current permissions prevented the action. "
                    f"({TABLES.get(name, name)} {action}: Base Application)",
                )

    def intents(self):
        """The Data-Access-Intent header of each request received ("" when absent)."""
        return [headers.get("data-access-intent", "") for _, _, headers in self.headers_seen]

    def _fault(self, fault, headers):
        if fault[0] == "drop":
            raise DropConnection()
        status = fault[1]
        extra = fault[2] if len(fault) > 2 else {}
        codes = {429: "Application_TooManyRequests", 503: "ServiceUnavailable"}
        return bc_error(
            status,
            codes.get(status, "InternalServerError"),
            "Fault injected by the test.",
            {**headers, **extra},
        )

    def _authenticate(self, request):
        auth = request.header("authorization")
        info = None
        if auth.startswith("Bearer "):
            info = self.fake.entra.token_info(auth[len("Bearer ") :])
        if info is None:
            return None, bc_error(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials.",
                {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )
        user = {"key": info["user"] or info["client_id"], "tid": info["tid"]}
        if info["user"] is None and not self.has_entra_application(info["tid"], info["client_id"]):
            return None, bc_error(  # What BC answers when the app has no card in the tenant.
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials.",
                {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )
        if info["user"] and info["user"].lower() in self.unlicensed_users:
            return None, bc_error(
                401,
                "Authentication_InvalidCredentials",
                "The user has no Business Central license.",
            )
        return user, None

    def _enter(self, user):
        with self.lock:
            count = self.in_flight.get(user["key"], 0) + 1
            if count > self.max_concurrent:
                return False
            self.in_flight[user["key"]] = count
            self.max_in_flight[user["key"]] = max(self.max_in_flight.get(user["key"], 0), count)
            return True

    def _leave(self, user):
        with self.lock:
            self.in_flight[user["key"]] -= 1

    # --- resources ---------------------------------------------------------------------

    def environments(self, user):
        return [
            {
                "friendlyName": name,
                "type": "Production" if name == "Production" else "Sandbox",
                "name": name,
                "countryCode": "US",
                "applicationFamily": "BusinessCentral",
                "aadTenantId": user["tid"],
                "applicationVersion": "24.0.16410.18040",
                "status": "Active",
                "webClientLoginUrl": f"https://businesscentral.dynamics.com/{user['tid']}/{name}",
            }
            for name in self.environment_names
        ]

    def resource(self, method, rest, request):
        segments = [ENTITY.fullmatch(part) for part in rest.strip("/").split("/") if part]
        if not segments or None in segments:
            raise BCError(404, "BadRequest_NotFound", f"No resource at {rest or '/'}.")
        names = [match.group(1) for match in segments]
        keys = [match.group(2) for match in segments]
        if names[0] != "companies":
            raise BCError(404, "BadRequest_NotFound", f"Resource '{names[0]}' was not found.")
        if len(names) == 1 and keys[0] is None and method == "GET":
            return self.page(
                request, [c.entity() for c in self.companies].__getitem__, len(self.companies)
            )
        company = self._company(keys[0])
        if len(names) == 1 and method == "GET":
            return json_response(company.entity())
        if names[1:] != ["customers"]:  # Vendors, items, sales orders: bc_entities.
            answer = bc_entities.answer(self, company, names[1:], keys[1:], method, request)
            if answer is None:
                raise BCError(404, "BadRequest_NotFound", f"No resource at {rest}.")
            return answer
        if keys[1] is None:
            if method == "GET":
                return self.page(request, company.at, company.end)
            if method == "POST":
                return self.create(company, request.json())
        else:
            customer_id = keys[1].strip("'")
            if method == "GET":
                return json_response(self._customer(company, customer_id))
            if method == "PATCH":
                return self.update(company, customer_id, request)
            if method == "DELETE":
                return self.remove(company, customer_id, request)
        raise BCError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")

    def odata(self, method, rest, request):
        """ODataV4 web services: the Customer_Card page of a company named in the URL."""
        match = CUSTOMER_CARD.fullmatch(unquote(rest))
        if not match or method != "GET":
            raise BCError(404, "BadRequest_NotFound", f"No web service at {rest or '/'}.")
        name = match.group(1).replace("''", "'")
        company = next((c for c in self.companies if c.name == name), None)
        if company is None:
            raise BCError(404, "BadRequest_NotFound", f"The company '{name}' does not exist.")

        def card(position):
            customer = company.at(position)
            if customer is None:
                return None
            return {
                "@odata.etag": customer["@odata.etag"],
                "No": customer["number"],
                "Name": customer["displayName"],
                "City": customer["city"],
            }

        return self.page(request, card, company.end)

    def _company(self, key):
        key = (key or "").strip("'")
        for company in self.companies:
            if company.id == key:
                return company
        raise BCError(
            400,
            "BadRequest_ResourceNotFound",
            f"The company '{key}' was not found in this environment.",
        )

    def _customer(self, company, customer_id):
        with self.lock:
            customer = company.get(customer_id)
        if customer is None:
            raise BCError(
                404,
                "BadRequest_NotFound",
                f"The Customer does not exist. Identification fields and values: "
                f"Id='{customer_id}'",
            )
        return customer

    # --- paging ------------------------------------------------------------------------

    def page(self, request, item_at, end):
        """One server-driven page: `$filter`, `$top`, `$select`, `$skiptoken`."""
        query = request.query
        page_size = MAX_PAGE_SIZE
        prefer = re.search(r"odata\.maxpagesize=(\d+)", request.header("prefer"))
        if prefer:
            page_size = max(1, min(int(prefer.group(1)), MAX_PAGE_SIZE))
        matches = parse_filter(query["$filter"]) if query.get("$filter") else None
        top = int(query["$top"]) if query.get("$top") else None
        select = query.get("$select", "").split(",") if query.get("$select") else None
        expand = self._expander(query.get("$expand"))
        if query.get("$orderby"):
            item_at = self._ordered(item_at, end, query["$orderby"])
        position = int(query.get("$skiptoken", 0))
        limit = min(page_size, top) if top is not None else page_size
        values = []
        while position < end and len(values) < limit:
            with self.lock:
                item = item_at(position)
            position += 1
            if item is None or (matches and not matches(item)):
                continue
            if expand:
                item = expand(item)
            if select:
                item = {
                    k: v
                    for k, v in item.items()
                    if k in select or k == "@odata.etag" or (expand and k == EXPANDABLE)
                }
            values.append(item)
        body = {"@odata.context": f"{self.fake.url}/$metadata#{request.path}", "value": values}
        remaining = None if top is None else top - len(values)
        if position < end and remaining != 0 and len(values) == limit:
            body["@odata.nextLink"] = self._next_link(request, position, remaining)
        if self.next_link:
            body["@odata.nextLink"] = self.next_link
        headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if prefer else {}
        return json_response(body, headers=headers)

    @staticmethod
    def _expander(expression):
        """`$expand=customerFinancialDetail` nests a customer's balances; BC refuses others."""
        if not expression:
            return None
        if expression.strip() != EXPANDABLE:
            raise BCError(
                400,
                "BadRequest_NotFound",
                f"Could not find a navigation property named '{expression}'.",
            )

        def expand(item):
            if "number" not in item:
                raise BCError(400, "BadRequest_NotFound", "Nothing to expand on this entity.")
            detail = {"id": item["id"], "number": item["number"], "balance": 0}
            return {**item, EXPANDABLE: {**detail, "totalSalesExcludingTax": 0}}

        return expand

    def _ordered(self, item_at, end, expression):
        """`$orderby=field [asc|desc]`: the collection sorted (materialised: tests only)."""
        match = ORDER_BY.fullmatch(expression.strip())
        if not match:
            raise BCError(400, "BadRequest", f"Invalid $orderby expression: {expression}")
        field_, descending = match.group(1), match.group(2) == "desc"
        with self.lock:
            items = [item for item in map(item_at, range(end)) if item is not None]
        if items and field_ not in items[0]:
            raise BCError(
                400, "BadRequest_NotFound", f"Could not find a property named '{field_}'."
            )
        items.sort(key=lambda item: item.get(field_), reverse=descending)
        return lambda position: items[position] if position < len(items) else None

    def _next_link(self, request, position, remaining):
        params = [
            (k, v)
            for k, v in parse_qsl(getattr(request, "raw_query", ""), keep_blank_values=True)
            if k not in ("$skiptoken", "$top")
        ]
        if remaining is not None:
            params.append(("$top", str(remaining)))
        params.append(("$skiptoken", str(position)))
        query = urlencode(params, safe="$,()'", quote_via=quote)
        return f"{self.fake.url}{request.path}?{query}"

    # --- changes -----------------------------------------------------------------------

    def _validate(self, body):
        if not isinstance(body, dict):
            raise BCError(400, "BadRequest", "Invalid Request Body.")
        for key, value in body.items():
            if key == "@odata.etag":
                continue
            if key not in WRITABLE and key != "number":
                raise BCError(
                    400,
                    "BadRequest",
                    f"Invalid Request Body: the property '{key}' does not exist or is read-only.",
                )
            if key == "displayName" and len(str(value)) > 100:
                raise BCError(
                    400,
                    "Application_StringExceededLength",
                    "The length of the string is 101, but it must be less than or "
                    "equal to 100 characters. Value: " + str(value)[:20],
                )

    def create(self, company, body):
        self._validate(body)
        with self.lock:
            customer_id = str(uuid.uuid4())
            number = body.get("number") or f"C{company.end + 1:06d}"
            customer = {
                **company.generate(0),
                "displayName": "",
                "email": "",
                "phoneNumber": "",
                **body,
                "id": customer_id,
                "number": number,
                "lastModifiedDateTime": _now(),
            }
            customer["@odata.etag"] = _etag(customer_id, 1)
            company.changed[customer_id] = customer
            company.created.append(customer_id)
            self._changed(company, customer_id, "created", customer["lastModifiedDateTime"])
        return json_response(customer, 201, {"ETag": customer["@odata.etag"]})

    def _check_etag(self, customer, request):
        given = request.header("if-match")
        if not given:
            raise BCError(
                400,
                "BadRequest",
                "Could not validate the client concurrency token required by the service. "
                "Please provide a valid token in the client request.",
            )
        if given == "*":
            return
        if not given.startswith('W/"'):
            raise BCError(412, "PreconditionFailed", "The If-Match header is not a valid ETag.")
        if given != customer["@odata.etag"]:
            raise BCError(
                409,
                "Request_EntityChanged",
                "Another user has already changed the record.",
            )

    def update(self, company, customer_id, request):
        body = request.json()
        self._validate(body)
        with self.lock:
            customer = dict(self._customer(company, customer_id))
            self._check_etag(customer, request)
            version = _version(customer["@odata.etag"]) + 1
            customer.update({k: v for k, v in body.items() if k != "@odata.etag"})
            customer["@odata.etag"] = _etag(customer_id, version)
            customer["lastModifiedDateTime"] = _now()
            company.changed[customer_id] = customer
            self._changed(company, customer_id, "updated", customer["lastModifiedDateTime"])
        return json_response(customer, headers={"ETag": customer["@odata.etag"]})

    def remove(self, company, customer_id, request):
        with self.lock:
            customer = self._customer(company, customer_id)
            self._check_etag(customer, request)
            company.changed.pop(customer_id, None)
            company.deleted.add(customer_id)
            self._changed(company, customer_id, "deleted", _now())
        return Response(204)

    def _changed(self, company, customer_id, change_type, modified):
        """Tell the webhooks, or hold the change until the $batch that made it commits."""
        change = {
            "company_id": company.id,
            "entity": "customers",
            "record_id": customer_id,
            "change_type": change_type,
            "modified": modified,
        }
        if self._held_changes is not None:
            self._held_changes.append(change)
        else:
            self.webhooks.record(**change)

    # --- $batch ------------------------------------------------------------------------

    def batch(self, request, route, user):
        try:
            operations = request.json()["requests"]
        except (ValueError, KeyError, TypeError):
            raise BCError(400, "BadRequest", "The batch request body is not valid.") from None
        if len(operations) > MAX_BATCH:
            raise BCError(
                400,
                "BadRequest",
                f"The batch contains {len(operations)} operations; the maximum is {MAX_BATCH}.",
            )
        atomic = request.header("isolation").lower() == "snapshot"
        root = f"/v2.0/{route.group(1)}/{route.group(2)}/api/v2.0"
        with self.lock:  # One batch at a time: a snapshot batch is one transaction.
            saved = [company.snapshot() for company in self.companies] if atomic else None
            responses = []
            self._held_changes = held = []
            try:
                for operation in operations:
                    answer = self._batch_operation(operation, root)
                    responses.append(answer)
                    if atomic and answer["status"] >= 400:
                        for company, snapshot in zip(self.companies, saved, strict=True):
                            company.restore(snapshot)
                        held.clear()  # Rolled back: nothing changed, nothing to notify.
                        break
            finally:
                self._held_changes = None
            for change in held:
                self.webhooks.record(**change)
        return json_response({"responses": responses})

    def _batch_operation(self, operation, root):
        url = urlsplit(operation.get("url", ""))
        path = url.path if url.path.startswith("/") else f"{root}/{url.path}"
        body = operation.get("body")
        inner = Request(
            method=operation.get("method", "GET").upper(),
            path=unquote(path),
            query={k: v for k, v in parse_qsl(url.query)},
            headers={k.lower(): v for k, v in (operation.get("headers") or {}).items()},
            body=json.dumps(body).encode() if body is not None else b"",
        )
        inner.raw_query = url.query
        route = ROUTE.fullmatch(inner.path)
        try:
            if not route or route.group(3) != "api/v2.0":
                raise BCError(400, "BadRequest", f"Invalid URL in batch: {path}")
            response = self.resource(inner.method, route.group(4) or "", inner)
        except BCError as err:
            response = bc_error(err.status, err.code, err.message)
        answer = {
            "id": operation.get("id"),
            "status": response.status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
        }
        if response.body:
            answer["body"] = json.loads(response.body)
        return answer


BODY_FAULTS = ("cut_body", "cut_json", "bad_gzip", "html", "answer")
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in to your account</title></head>"
    "<body><p>A proxy answered instead of Business Central.</p></body></html>"
)


class _CutBody(bytes):
    """A body whose length claims `declared` bytes: the server sends fewer and hangs up."""

    declared = 0

    def __len__(self):
        return self.declared


def _spoil(response, fault):
    """The answer with a broken body, as a failing network or a proxy in the way sends it.

    `cut_body` declares the whole length, sends half and closes the socket (requests raises
    ChunkedEncodingError mid-body); `cut_json` is a complete HTTP answer whose JSON stops
    halfway; `bad_gzip` is gzip that breaks halfway (ContentDecodingError); `html` is a
    sign-in page with status 200; `answer` replaces the body with `fault[1]`, as JSON.
    """
    kind, body = fault[0], response.body
    if kind == "cut_body":
        cut = _CutBody(body[: len(body) // 2])
        cut.declared = len(body)
        response.body = cut
        response.headers["Connection"] = "close"  # The server hangs up after the half.
    elif kind == "cut_json":
        response.body = body[: len(body) // 2]
    elif kind == "bad_gzip":
        packed = gzip.compress(body)
        response.body = packed[: len(packed) // 2] + bytes(range(256))[::-1] * 2
        response.headers["Content-Encoding"] = "gzip"
    elif kind == "html":
        response.status, response.body = 200, HTML_PAGE.encode()
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    else:
        response.body = json.dumps(fault[1]).encode()
    return response


def _version(etag):
    raw = base64.b64decode(etag[3:-1]).decode()
    return int(raw.split(";")[2])


def _now():
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
