"""The admin for endpoints: declarative; testing, exporting and choosing a company are in
`endpoint_views`, moving and copying in `endpoints.moves`.

Viewing a definition needs only the view permission and so does testing a GET (it reads);
exports and tests that change data need `run_endpoint` as well.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from authentications.admin import columns, endpoint_views
from authentications.admin.displays import badge
from authentications.endpoints import moves as endpoint_moves
from authentications.endpoints.forms import EndpointForm, MoveEndpointsForm, as_rows
from authentications.endpoints.models import Endpoint, credential_param
from authentications.kit.formatting import when
from bcconnect.client import forbidden_header
from bcconnect.errors import BcconnectError


@admin.display(description="Whole URL")
def full_url(obj):
    if obj is None or not obj.pk:
        return "—"
    try:
        return obj.url()
    except BcconnectError as err:  # Why it cannot be sent is the useful display.
        return err.message


@admin.display(description="Company")
def company_display(obj):
    if obj.company_id:
        return f"{obj.company_name} ({obj.company_id})"
    return "choose one (the path needs it)" if obj.needs_company else "—"


@admin.display(description="Query parameters")
def params_display(obj):
    return _rows(obj.params, credential_param)


@admin.display(description="Headers")
def headers_display(obj):
    return _rows(obj.headers, forbidden_header)


def _rows(value, refuse):
    """Key/value rows for a user who may only view: a value the rules refuse (stored by
    code, past the form) may be a credential, so it is not shown."""
    rows = [(name, "(refused, not shown)" if refuse(name, v) else v) for name, v in as_rows(value)]
    return format_html_join(mark_safe("<br>"), "{}: {}", rows) or "—"


@admin.display(description="Last test", ordering="last_tested_at")
def last_test(obj):
    if not obj.last_tested_at:
        return "never"
    moment = when(obj.last_tested_at)
    if obj.last_test_error:
        status = f"HTTP {obj.last_test_status}" if obj.last_test_status else "failed"
        return badge("failing", f"{status} · {moment}")
    rows = "" if obj.last_test_rows is None else f" · {rows_text(obj.last_test_rows)}"
    return f"HTTP {obj.last_test_status} · {obj.last_test_ms} ms{rows} · {moment}"


def rows_text(count):
    return f"{count:,} row{pluralize(count)}"


@admin.display(description="Last export", ordering="last_export_at")
def last_export(obj):
    """How the last download from the admin ended: its file says so too, in its last line."""
    if not obj.last_export_at:
        return "never"
    moment = when(obj.last_export_at)
    rows = rows_text(obj.last_export_rows or 0)
    if not obj.last_export_complete:
        return badge("failing", f"{rows}, then stopped · {moment} · {obj.last_export_note}")
    note = f" · {obj.last_export_note}" if obj.last_export_note else ""
    return f"{rows}, complete · {moment}{note}"


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    change_form_template = "admin/authentications/endpoint/change_form.html"
    list_display = ("name", "method", columns.authentication_name, "path", last_test)
    list_filter = ("method", "authentication")
    list_select_related = ("authentication",)
    search_fields = ("name", "description", "path")
    actions = ["test_endpoint", "point_at_another_authentication", "duplicate"]
    readonly_fields = (
        full_url,
        company_display,
        last_test,
        last_export,
        params_display,
        headers_display,
    )

    class Media:
        css = {"all": ["authentications/admin.css"]}

    def get_fieldsets(self, request, obj=None):
        request_fields = ["authentication", "method", "path", "params", "headers", "body"]
        request_fields.append("read_only_intent")
        if obj is not None:
            request_fields[3:3] = [full_url, company_display]
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only fields show the stored JSON as it is; these hide refused values.
            request_fields = [
                {"params": params_display, "headers": headers_display}.get(f, f)
                for f in request_fields
            ]
        fieldsets = [
            (None, {"fields": ["name", "description"]}),
            ("Request", {"fields": request_fields}),
        ]
        if obj is not None:
            fieldsets.append(("Last test and export", {"fields": [last_test, last_export]}))
        return fieldsets

    def has_run_permission(self, request, obj=None):
        return request.user.has_perm("authentications.run_endpoint")

    def get_urls(self):
        return endpoint_views.urls(self) + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "bc_can_run": self.has_run_permission(request),
            "bc_can_choose_company": self.has_change_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- actions ------------------------------------------------------------------------

    @admin.action(description="Test endpoint", permissions=["view"])
    def test_endpoint(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select one endpoint to test.", messages.WARNING)
            return None
        return HttpResponseRedirect(endpoint_views.test_url(queryset.get()))

    @admin.action(description="Duplicate", permissions=["add"])
    def duplicate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select one endpoint to duplicate.", messages.WARNING)
            return None
        copy = endpoint_moves.duplicate(queryset.get())
        self.message_user(request, f"Copied as “{copy}”.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:authentications_endpoint_change", args=[copy.pk])
        )

    @admin.action(description="Point at another authentication", permissions=["change"])
    def point_at_another_authentication(self, request, queryset):
        """Choose the authentication, see what changes, confirm: three posts of one form."""
        form = MoveEndpointsForm(request.POST if "bc_move_step" in request.POST else None)
        if not form.is_valid():
            return self._move_page(request, queryset, form, moves=None)
        target = form.cleaned_data["authentication"]
        moves = endpoint_moves.plan_moves(queryset.select_related("authentication"), target)
        if request.POST["bc_move_step"] != "confirm":
            return self._move_page(request, queryset, form, moves=moves)
        shown = endpoint_moves.confirmed(moves, request.POST.getlist("bc_seen"))
        done = endpoint_moves.apply_moves(shown, target, actor=request.user.get_username())
        self.message_user(request, f"{len(done)} endpoint(s) now use “{target}”.", messages.SUCCESS)
        if len(done) < len(moves):
            self.message_user(
                request,
                f"{len(moves) - len(done)} endpoint(s) changed meanwhile and were not moved: "
                "review them and try again.",
                messages.WARNING,
            )
        return None

    def _move_page(self, request, queryset, form, *, moves):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Point endpoints at another authentication",
            "form": form,
            "endpoints": queryset,
            "moves": moves,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/authentications/endpoint/move.html", context)
