"""The endpoint admin's object views: test, export and choose the company.

A GET endpoint is tested at once; one that changes data first shows what it will do and
runs only when that page is confirmed (a POST of its single-use nonce), then redirects to
its result page (Post/Redirect/Get: a reload shows the result, it does not send the write
again). Exports stream while BC is paged through.
Nothing here shows the request's authorization: the pages are built from the endpoint's
own fields and from BC's answer.
"""

import json
from datetime import UTC

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify

from authentications.admin.connection_views import object_or_404, object_page
from authentications.connections.diagnostics import describe_error
from authentications.endpoints import exports, moves
from authentications.endpoints import runs as endpoint_runs
from authentications.endpoints.models import Endpoint
from authentications.endpoints.runs import Confirmation
from bcconnect.client import forbidden_header
from bcconnect.errors import BcconnectError

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}


def urls(model_admin):
    """The object views' URLs, behind the admin site's login, named as the admin names its own."""
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    routes = [
        ("test", test, "test", {}),
        ("test/result/<str:nonce>", test_result, "test_result", {}),
        ("company", choose_company, "company", {}),
        ("export/csv", export, "export_csv", {"format": "csv"}),
        ("export/jsonl", export, "export_jsonl", {"format": "jsonl"}),
    ]
    return [
        path(
            f"<path:object_id>/{route}/",
            model_admin.admin_site.admin_view(view),
            {"model_admin": model_admin, **extra},
            name=f"{prefix}_{name}",
        )
        for route, view, name, extra in routes
    ]


def test_url(endpoint):
    return reverse("admin:authentications_endpoint_test", args=[endpoint.pk])


def change_url(endpoint):
    return reverse("admin:authentications_endpoint_change", args=[endpoint.pk])


def back_to(endpoint):
    return HttpResponseRedirect(change_url(endpoint))


# --- testing --------------------------------------------------------------------------------


def test(request, object_id, *, model_admin):
    """Run a GET now; for a write, confirm first (GET shows the page, POST runs it)."""
    endpoint = object_or_404(model_admin, request, object_id, may=model_admin.has_view_permission)
    if not endpoint.is_read:
        if not model_admin.has_run_permission(request):
            raise PermissionDenied
        if request.method != "POST" or "bc_confirm" not in request.POST:
            return _confirmation(request, model_admin, endpoint)
        return _send_confirmed(request, model_admin, endpoint)
    trial = endpoint_runs.try_endpoint(endpoint, actor=request.user.get_username())
    return _result_page(request, model_admin, endpoint, trial)


def _result_page(request, model_admin, endpoint, trial):
    return object_page(
        request,
        model_admin,
        endpoint,
        "test.html",
        title=f"Test of {endpoint}",
        trial=trial,
        columns=trial.columns,
        table=trial.table(),
        record=trial.record(),
        bc_can_run=model_admin.has_run_permission(request),
        bc_can_choose_company=model_admin.has_change_permission(request, endpoint),
    )


def _send_confirmed(request, model_admin, endpoint):
    """Spend the posted confirmation and send the write once; then redirect to its result."""
    user = request.user.get_username()
    nonce = request.POST.get("bc_nonce", "")
    happened, shown = endpoint_runs.send_confirmed(endpoint, nonce, user=user)
    if happened == Confirmation.ASK_AGAIN:
        messages.warning(
            request,
            "The request changed since its confirmation page was shown (another "
            "authentication, company or content), the page is too old, or it was not "
            "used: nothing was sent. Check the request below and confirm again.",
        )
        return _confirmation(request, model_admin, endpoint)
    if happened == Confirmation.USED:
        messages.warning(
            request,
            "This confirmation was used already: the write was not sent again. Its result "
            "is below; to send it once more, start a new test.",
        )
        if shown.outcome is None:  # Still being sent by the first post.
            return back_to(endpoint)
    return HttpResponseRedirect(
        reverse("admin:authentications_endpoint_test_result", args=[endpoint.pk, shown.nonce])
    )


def test_result(request, object_id, nonce, *, model_admin):
    """A sent write's result (the GET after its POST): shown again on reload, never re-sent."""
    endpoint = object_or_404(model_admin, request, object_id, may=model_admin.has_view_permission)
    if not model_admin.has_run_permission(request):
        raise PermissionDenied
    trial = endpoint_runs.confirmed_outcome(endpoint, nonce, user=request.user.get_username())
    if trial is None:
        raise Http404("No such test result.")
    return _result_page(request, model_admin, endpoint, trial)


def _confirmation(request, model_admin, endpoint):
    try:
        url = endpoint.url()
        nonce = endpoint_runs.show_confirmation(endpoint, user=request.user.get_username())
    except BcconnectError as err:
        messages.error(request, f"“{endpoint}”: {describe_error(err)}")
        return back_to(endpoint)
    return object_page(
        request,
        model_admin,
        endpoint,
        "confirm.html",
        title=f"Send {endpoint.method} to Business Central?",
        url=url,
        nonce=nonce,
        environment=endpoint.authentication.environment_name or endpoint.authentication.base_url,
        request_headers=shown_headers(endpoint),
        body=None if endpoint.body is None else json.dumps(endpoint.body, indent=2),
    )


def shown_headers(endpoint):
    """The stored headers; the value of one the client would refuse (stored by code, not
    through the form) is not shown: it may be a credential."""
    return [
        (name, "(refused, not sent)" if forbidden_header(name, value) else value)
        for name, value in sorted(endpoint.request_headers().items())
    ]


# --- exporting ------------------------------------------------------------------------------


def export(request, object_id, *, model_admin, format):
    """Stream every row of a GET endpoint; the first page is read before the download starts."""
    endpoint = object_or_404(model_admin, request, object_id, may=_may_export(model_admin))
    if not endpoint.is_read:
        messages.error(request, "Only GET endpoints can be exported.")
        return back_to(endpoint)
    try:
        pages = exports.open_pages(endpoint)
    except BcconnectError as err:
        messages.error(request, f"“{endpoint}” cannot be exported: {describe_error(err)}")
        return back_to(endpoint)
    tally = exports.Tally()
    raw = format == "csv" and request.GET.get("raw") == "1"
    if format == "csv":
        chunks = exports.csv_chunks(pages, excel=not raw, tally=tally)
    else:
        chunks = exports.jsonl_chunks(pages, tally=tally)
    content_type, extension = FORMATS[format]
    response = StreamingHttpResponse(_encoded(chunks, pages, endpoint, tally), content_type)
    filename = export_filename(endpoint, extension, raw=raw)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response


def export_filename(endpoint, extension, *, raw=False, now=None):
    """`<endpoint>-<UTC timestamp>.csv`; the raw CSV (for programs) ends `-raw.csv`."""
    stamp = (now or timezone.now()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = slugify(endpoint.name) or "endpoint"
    return f"{name}-{stamp}{'-raw' if raw else ''}.{extension}"


def _encoded(chunks, pages, endpoint, tally):
    """UTF-8 bytes; closing the download (the client left) closes the pages at once.

    Once the last line is written, the endpoint records how the export ended, so the
    admin says so too; a download the client abandoned is not recorded.
    """
    try:
        for chunk in chunks:
            yield chunk.encode()
        _record_export(endpoint, tally)
    finally:
        pages.close()


def _record_export(endpoint, tally):
    Endpoint.objects.filter(pk=endpoint.pk).update(
        last_export_at=timezone.now(),
        last_export_rows=tally.rows,
        last_export_complete=tally.complete,
        last_export_note=tally.note()[:300],
    )


def _may_export(model_admin):
    def may(request, endpoint):
        return model_admin.has_view_permission(request, endpoint) and (
            model_admin.has_run_permission(request)
        )

    return may


# --- the company ----------------------------------------------------------------------------


def choose_company(request, object_id, *, model_admin):
    """List the companies the authentication reaches (GET); give the endpoint one (POST)."""
    endpoint = object_or_404(model_admin, request, object_id, may=model_admin.has_change_permission)
    try:
        if request.method == "POST":
            return _set_company(request, endpoint)
        companies = moves.companies_reached(endpoint.authentication)
    except BcconnectError as err:
        messages.error(request, f"“{endpoint.authentication}”: {describe_error(err)}")
        return back_to(endpoint)
    return object_page(
        request,
        model_admin,
        endpoint,
        "company.html",
        title=f"Choose the company for {endpoint}",
        companies=companies,
    )


def _set_company(request, endpoint):
    chosen = moves.set_company(endpoint, request.POST.get("company_id", ""))
    if chosen is None:
        messages.error(
            request,
            "That is not a company this authentication reaches (or the endpoint was pointed "
            "at another authentication meanwhile): nothing changed.",
        )
    elif chosen["id"]:
        messages.success(request, f"“{endpoint}” now uses the company “{chosen['name']}”.")
    else:
        messages.success(request, f"“{endpoint}” uses no company now.")
    return back_to(endpoint)
