"""Admin pieces that call Business Central: "Test connection" and environment discovery.

A mixin for `AuthenticationAdmin`, so these views, their URLs and the list action stay
in one place; each view parses input, calls one flow from `connection` and reports it.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from bcconnect.client import BusinessCentralError

from . import connection
from .tokens import TokenError


def _change_url(authentication):
    return reverse("admin:authentications_authentication_change", args=[authentication.pk])


class BusinessCentralAdminMixin:
    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="authentications_authentication_test_connection",
            ),
            path(
                "<path:object_id>/environments/",
                self.admin_site.admin_view(self.environments_view),
                name="authentications_authentication_environments",
            ),
        ]
        return custom + super().get_urls()

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            action = BusinessCentralAdminMixin.test_connection_action
            actions["test_connection_action"] = (
                action,
                "test_connection_action",
                action.short_description,
            )
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Back from a sign-in: offer the environments and companies the user reaches."""
        extra_context = dict(extra_context or {})
        if extra_context.get("bc_just_signed_in"):  # Set by AuthenticationAdmin.change_view.
            obj = self.get_object(request, object_id)
            if obj is not None and obj.access_token and self.has_change_permission(request, obj):
                extra_context.update(self._discovery_context(obj))
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Test connection")
    def test_connection_action(self, request, queryset):
        for authentication in queryset:
            self._report(request, connection.check_connection(authentication))

    @method_decorator(require_POST)
    def test_connection_view(self, request, object_id):
        authentication = self._object_to_change(request, object_id)
        self._report(request, connection.check_connection(authentication))
        return HttpResponseRedirect(_change_url(authentication))

    def environments_view(self, request, object_id):
        """List environments and companies (GET); point the BC URL at one (POST)."""
        authentication = self._object_to_change(request, object_id)
        if request.method == "POST":
            return self._choose_environment(request, authentication)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Environments and companies for {authentication}",
            "opts": self.model._meta,
            "original": authentication,
            **self._discovery_context(authentication),
        }
        return TemplateResponse(
            request, "admin/authentications/authentication/environments.html", context
        )

    # --- helpers -------------------------------------------------------------------------

    def _object_or_404(self, request, object_id):
        """The object for `object_id` through `get_object`, as Django's own views load it: a
        malformed id is a 404 like an unknown one, not a 500."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No authentication with the id {object_id!r}.")
        return obj

    def _object_to_change(self, request, object_id):
        authentication = self._object_or_404(request, object_id)
        if not self.has_change_permission(request, authentication):
            raise PermissionDenied
        return authentication

    def _report(self, request, check):
        self.message_user(request, check.message, messages.SUCCESS if check.ok else messages.ERROR)

    def _discovery_context(self, authentication):
        try:
            environments = connection.discover_environments(authentication)
        except (TokenError, BusinessCentralError) as err:
            return {"bc_environments": [], "bc_discovery_error": connection.describe_error(err)}
        return {
            "bc_environments": environments,
            "bc_discovery_error": "",
            "bc_environments_url": reverse(
                "admin:authentications_authentication_environments", args=[authentication.pk]
            ),
        }

    def _choose_environment(self, request, authentication):
        name = request.POST.get("bc_environment", "")
        try:
            chosen = connection.choose_environment(
                authentication, name, actor=request.user.get_username()
            )
        except (TokenError, BusinessCentralError) as err:
            self.message_user(request, connection.describe_error(err), messages.ERROR)
            return HttpResponseRedirect(_change_url(authentication))
        if chosen is None:
            self.message_user(
                request, f"“{name}” is not an environment this user reaches.", messages.ERROR
            )
        else:
            self.message_user(
                request,
                f"Business Central URL set to the {chosen.name} environment: {chosen.base_url}",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(_change_url(authentication))
