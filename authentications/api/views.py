"""The API's views: thin, each one call to a capability's public function.

Every view is audited (`Audited`), answers errors as problem details (`problems`), takes
keys only (settings.REST_FRAMEWORK) and names the scopes it needs; an authentication or
endpoint the key may not use is looked up in a queryset that does not hold it, so it is a
404 like one that does not exist.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from authentications.api import key_reads, problems, proxy
from authentications.api.audit import Audited
from authentications.api.permissions import HasScopes, ScopeMissing
from authentications.api.schema import PROXY_ANSWER
from authentications.api.schema import problems as documented_problems
from authentications.api.scopes import Scope, for_method
from authentications.api.serializers import (
    AuthenticationSerializer,
    EndpointSerializer,
    ExportQuerySerializer,
    RunSerializer,
    TokenQuerySerializer,
    TokenSerializer,
)
from authentications.connections.models import Authentication
from authentications.connections.tokens import FAST_FIELDS, TokenError, access_token
from authentications.endpoints import exports
from authentications.endpoints.models import Endpoint
from authentications.endpoints.runs import try_endpoint
from bcconnect.errors import BcconnectError

EXPORT = (
    "The rows, a page at a time; a file cut short by BC ends with a line saying so "
    "(see the admin's export)."
)
# The columns the API shows: no secret column is loaded, so none is decrypted.
SHOWN = ("id", "name", "kind", "status", "base_url", "access_token_expires_at")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# One instance of each for every hand-out: validating a query and writing a dict keep no
# state on the serializer, and a new one deep-copies its fields first.
TOKEN_QUERY, TOKEN_ANSWER = TokenQuerySerializer(), TokenSerializer()


class ApiView(Audited, APIView):
    permission_classes = [HasScopes]
    scopes: tuple[str, ...] = ()
    # The columns of the authentication named by the URL's pk that the view needs: read
    # with the key, in the key check's one statement.
    authentication_fields: tuple[str, ...] = ()

    def required_scopes(self, request):
        return self.scopes

    def authentication_to_read(self):
        """(pk, fields) for the key check to read along, or None."""
        if self.authentication_fields and "pk" in self.kwargs:
            return self.kwargs["pk"], self.authentication_fields
        return None

    def usable_authentications(self):
        return self.request.auth.usable_authentications(Authentication.objects.all())

    def authentication(self, pk):
        """The authentication `pk` if this key may use it; a 404 otherwise. Only its
        `authentication_fields` are loaded (each secret column loaded is a decryption)."""
        found = key_reads.usable_authentication(self.request.auth, pk, self.authentication_fields)
        if found is None:
            raise NotFound()
        self.audit_authentication_id = found.pk
        return found


@extend_schema_view(
    get=extend_schema(
        responses={200: AuthenticationSerializer(many=True), **documented_problems(400)}
    )
)
class AuthenticationList(ApiView, generics.ListAPIView):
    """The authentications this key may use."""

    serializer_class = AuthenticationSerializer

    def get_queryset(self):
        return self.usable_authentications().only(*SHOWN).order_by("name", "pk")


@extend_schema_view(
    get=extend_schema(responses={200: AuthenticationSerializer, **documented_problems()})
)
class AuthenticationDetail(ApiView, generics.RetrieveAPIView):
    """One authentication this key may use."""

    serializer_class = AuthenticationSerializer
    authentication_fields = SHOWN

    def get_object(self):
        return self.authentication(self.kwargs["pk"])


class TokenView(ApiView):
    """A valid access token for the authentication's BC API (scope `tokens`)."""

    scopes = (Scope.TOKENS,)
    authentication_fields = FAST_FIELDS

    @extend_schema(
        request=None,
        parameters=[TokenQuerySerializer],
        responses={200: TokenSerializer, **documented_problems(400, 409, 502, 503)},
        operation_id="authentications_token",
    )
    def post(self, request, pk):
        query = TOKEN_QUERY.run_validation(request.query_params)
        # The key check read the token along: one read per hand-out, not two.
        authentication = self.authentication(pk)
        try:
            token = access_token(
                authentication,
                min_validity=query["min_validity"],
                just_read=True,
            )
        except TokenError as err:
            raise problems.from_token_error(err) from None
        expires_in = int((token.expires_at - timezone.now()).total_seconds())
        body = {
            "access_token": token.value,
            "token_type": "Bearer",
            "expires_at": token.expires_at,
            "expires_in": max(expires_in, 0),
        }
        return Response(TOKEN_ANSWER.to_representation(body), headers=NO_STORE)


# What the proxy forwards, as OpenAPI can say it of one path segment: no control character,
# backslash, `@`, `%`, `:` or slash, and not `.` or `..` (proxy.checked_path refuses those
# with 400, nothing sent). Deeper paths are sent with their slashes as they are.
PROXIED_PATH = OpenApiParameter(
    "path",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The path under the authentication's BC base URL, e.g. "
    "`companies(<id>)/customers`; refused (400 `path_refused`) if it could leave it.",
    pattern=r"^(?:[^\x00-\x1f\x7f\\@%/:.]|\.[^\x00-\x1f\x7f\\@%/:.])[^\x00-\x1f\x7f\\@%/:]*$",
)


def _proxied(method):
    """The schema of one method of the proxy (each needs its own operation id).

    BC's own answers pass through with any status and type (its JSON errors, a picture's
    bytes), beside the proxy's own problems.
    """
    statuses = (400, 401, 403, 404, 405, 409, 413, 428, 429, 502, 503, 504)
    bc_answers = {
        (status, "*/*"): OpenApiResponse(OpenApiTypes.ANY, description=PROXY_ANSWER)
        for status in (200, *statuses)
    }
    return extend_schema(
        operation_id=f"bc_proxy_{method}",
        parameters=[PROXIED_PATH],
        request=None if method in ("get", "delete") else {"application/json": dict},
        responses={
            **documented_problems(*statuses),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description=PROXY_ANSWER
            ),
            **bc_answers,
            ("default", "*/*"): OpenApiResponse(OpenApiTypes.ANY, description=PROXY_ANSWER),
        },
    )


class BcProxy(ApiView):
    """BC's API under the authentication's base URL, with this key (`bc.read`/`bc.write`)."""

    http_method_names = ["get", "post", "patch", "put", "delete"]
    authentication_fields = proxy.PROXY_FIELDS

    def required_scopes(self, request):
        return (for_method(request.method),)

    @_proxied("get")
    def get(self, request, pk, path):
        return self.forward(request, pk)

    @_proxied("post")
    def post(self, request, pk, path):
        return self.forward(request, pk)

    @_proxied("patch")
    def patch(self, request, pk, path):
        return self.forward(request, pk)

    @_proxied("put")
    def put(self, request, pk, path):
        return self.forward(request, pk)

    @_proxied("delete")
    def delete(self, request, pk, path):
        return self.forward(request, pk)

    def forward(self, request, pk):
        authentication = self.authentication(pk)
        here = f"/api/v1/authentications/{pk}/bc/"
        try:
            path, query = proxy.raw_target(request, here)
            answer = proxy.forward(
                authentication,
                method=request.method,
                path=path,
                query=query,
                body=_body(request),
                headers=request.headers,
                here=request.build_absolute_uri(here),
            )
        except proxy.PathRefused as err:
            detail = f"Path refused: {err}; nothing was sent."
            raise problems.Problem(400, "path_refused", detail) from None
        except proxy.TokenRefusedByBc:
            detail = (
                "Business Central refused this connection's token, even a freshly refreshed "
                "one: its user or app may have lost access in BC."
            )
            raise problems.Problem(502, "bc_token_refused", detail) from None
        except TokenError as err:
            raise problems.from_token_error(err) from None
        except BcconnectError as err:
            raise problems.from_bc_error(err) from None
        return _streamed(answer)


def _body(request):
    if request.method == "GET":
        return None
    try:
        return request.body or None
    except RequestDataTooBig:
        detail = "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE; nothing was sent."
        raise problems.Problem(413, "body_too_large", detail) from None


def _streamed(answer):
    response = StreamingHttpResponse(answer.body, status=answer.status)
    if "Content-Type" not in answer.headers:
        del response["Content-Type"]
    for name, value in answer.headers.items():
        response[name] = value
    return response


class EndpointScoped(ApiView):
    scopes = (Scope.ENDPOINTS,)

    def endpoint(self, pk):
        """The endpoint `pk` if this key may use its authentication; a 404 otherwise."""
        found = get_object_or_404(self.usable_endpoints(), pk=pk)
        self.audit_authentication_id = found.authentication_id
        return found

    def usable_endpoints(self):
        usable = self.usable_authentications().values("pk")
        return Endpoint.objects.filter(authentication__in=usable).select_related("authentication")


@extend_schema_view(
    get=extend_schema(responses={200: EndpointSerializer(many=True), **documented_problems()})
)
class EndpointList(EndpointScoped, generics.ListAPIView):
    """The saved endpoints of the authentications this key may use (scope `endpoints`)."""

    serializer_class = EndpointSerializer

    def get_queryset(self):
        return self.usable_endpoints().order_by("name", "pk")


class EndpointRun(EndpointScoped):
    """Send the endpoint once, as the admin's Test does (a write also needs `bc.write`)."""

    @extend_schema(
        request=None,
        responses={200: RunSerializer, **documented_problems(409, 502, 503)},
        operation_id="endpoints_run",
    )
    def post(self, request, pk):
        endpoint = self.endpoint(pk)
        if not endpoint.is_read and not request.auth.has_scope(Scope.BC_WRITE):
            raise ScopeMissing(f"Running a {endpoint.method} endpoint needs the scope bc.write.")
        try:
            access_token(endpoint.authentication)  # A person needed: 409, before sending.
        except TokenError as err:
            raise problems.from_token_error(err) from None
        trial = try_endpoint(endpoint, actor=f"API key {request.auth.prefix}")
        return Response(RunSerializer(trial).data)


class EndpointExport(EndpointScoped):
    """Every row of a GET endpoint, streamed as CSV (defused for Excel) or JSON Lines."""

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description=EXPORT),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY),
            **documented_problems(400, 409, 502, 503, 504),
        },
        operation_id="endpoints_export",
    )
    def get(self, request, pk):
        endpoint = self.endpoint(pk)
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if not endpoint.is_read:
            raise problems.Problem(400, "not_a_read", "Only GET endpoints can be exported.")
        try:
            pages = exports.open_pages(endpoint)
        except TokenError as err:
            raise problems.from_token_error(err) from None
        except BcconnectError as err:
            raise problems.from_bc_error(err) from None
        return _export(endpoint, pages, query.validated_data["file"])


FILES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _export(endpoint, pages, file):
    if file == "csv":
        chunks = exports.csv_chunks(pages, excel=True)  # Defused as the admin's download is.
    else:
        chunks = exports.jsonl_chunks(pages)
    response = StreamingHttpResponse(_encoded(chunks, pages), content_type=FILES[file])
    name = f"{slugify(endpoint.name) or 'endpoint'}.{file}"
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Cache-Control"] = "no-store"
    return response


def _encoded(chunks, pages):
    try:
        for chunk in chunks:
            yield chunk.encode()
    finally:
        pages.close()  # A caller that hangs up cancels the page fetched ahead.


@extend_schema(exclude=True)
class Unknown(ApiView):
    """Any other URL under /api/v1/: a problem-details 404, after the key check."""

    def get(self, request, *args, **kwargs):
        raise NotFound()

    post = put = patch = delete = get
