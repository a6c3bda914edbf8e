"""The admin for authentications: declarative; the object views are in `connection_views`."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from authentications.admin import certificates, connection_views, displays
from authentications.connections import changes, credentials, diagnostics, link_tokens, policies
from authentications.connections.forms import AuthenticationForm
from authentications.connections.models import Authentication
from authentications.links import emails

# The "Connection" fieldset: what is stored about the grant and its tokens.
CONNECTION_FIELDSET = (
    displays.status_badge,
    displays.access_token_display,
    displays.token_expiry,
    displays.granted_by,
    displays.last_refresh,
    displays.sign_in_valid_until_display,
    "consecutive_failures",
    "last_error",
)


@admin.register(Authentication)
class AuthenticationAdmin(admin.ModelAdmin):
    form = AuthenticationForm
    list_display = (
        "name",
        displays.status_badge,
        displays.granted_by,
        displays.token_expiry,
        displays.last_refresh,
        "consecutive_failures",
        displays.secret_days_left,
    )
    list_filter = (displays.StatusFilter, "kind")
    actions = ["refresh_now", "disconnect", "test_connection_action"]
    search_fields = ("name", "tenant_id", "client_id", "base_url", "granted_by_upn")
    readonly_fields = (
        displays.secret_state,
        displays.redirect_uri,
        displays.authorization_url,
        displays.admin_consent_url,
        *CONNECTION_FIELDSET,
        displays.event_history,
        certificates.certificates_display,
        certificates.certificates_view_only,
    )

    class Media:
        css = {"all": ["authentications/admin.css"]}
        js = ["authentications/admin.js"]

    def get_fieldsets(self, request, obj=None):
        entra = ["client_id", "tenant_id", "credential_type", "client_secret_expires_on"]
        if self._secret_is_editable(request, obj):
            entra[3:3] = ["client_secret", "client_secret_hold"]
        if obj is not None:
            entra.insert(-1, displays.secret_state)
        fieldsets = [
            (None, {"fields": ["name", "kind"]}),
            ("Microsoft Entra app registration", {"fields": [*entra, displays.redirect_uri]}),
            ("Business Central", {"fields": ["base_url", "expected_user"]}),
        ]
        if obj is not None:
            shown = list(CONNECTION_FIELDSET)
            if not request.user.has_perm("authentications.view_token"):
                shown.remove(displays.access_token_display)
            fieldsets += [
                ("Connection", {"fields": shown}),
                ("History", {"fields": [displays.event_history]}),
            ]
        if self.shows_authorization_url(request, obj):
            link = (
                displays.authorization_url
                if obj.is_user_impersonation
                else displays.admin_consent_url
            )
            fieldsets.insert(3, (emails.link_name(obj), {"fields": [link]}))
        if obj is not None:
            shown_certificates = (
                certificates.certificates_display
                if self.has_change_permission(request, obj)
                else certificates.certificates_view_only
            )
            fieldsets.insert(2, ("Certificates", {"fields": [shown_certificates]}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form, given this request: its session holds a secret typed before an error."""
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def _secret_is_editable(self, request, obj):
        """Whether the write-only secret input belongs on the page.

        Django renders a field the user may not change as its value (decrypted, here), so
        whoever may not change the authentication gets "Client secret stored" instead.
        """
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def has_authorize_permission(self, request, obj=None):
        return request.user.has_perm("authentications.authorize_authentication")

    def shows_authorization_url(self, request, obj):
        """Whether the page shows the link: the Authorization URL, or for service-to-service
        the Admin consent URL."""
        return (
            obj is not None
            and link_tokens.link_available(obj, link_tokens.purpose_of(obj))
            and self.has_authorize_permission(request)
        )

    def get_urls(self):
        return connection_views.urls(self) + certificates.urls(self) + super().get_urls()

    # --- actions ------------------------------------------------------------------------

    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request, queryset):
        for obj in queryset:
            connection_views.refresh_and_report(request, obj)

    @admin.action(description="Disconnect (delete tokens, revoke links)", permissions=["authorize"])
    def disconnect(self, request, queryset):
        for authentication in queryset:
            changes.disconnect(authentication, actor=request.user.get_username())
        self.message_user(
            request,
            f"Disconnected {queryset.count()} authentication(s): their tokens are deleted and "
            "their Authorization URLs revoked. To withdraw the consent in Microsoft too, open "
            "Entra > Enterprise applications > the app > Permissions (or the user's "
            "https://myapps.microsoft.com) and revoke it, or delete the client secret.",
            messages.SUCCESS,
        )

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection_action(self, request, queryset):
        for authentication in queryset:
            connection_views.report_check(request, diagnostics.check_connection(authentication))

    # --- the change page, saving and what Save goes on to --------------------------------

    @method_decorator(sensitive_post_parameters("client_secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The change page, with its buttons; back from a sign-in, also the environments."""
        obj = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            **connection_views.change_page_context(self, request, obj),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        """Write only the fields the form shows, then decide what Save goes on to."""
        changed = form.changed_fields
        if change:
            shown = [field.name for field in obj._meta.concrete_fields if field.name in form.fields]
            changes.save_edited(
                obj,
                fields=shown,
                changed_fields=changed,
                actor=request.user.get_username(),
            )
        else:
            super().save_model(request, obj, form, change)
        # Django hands response_add/response_change the object, not the form: the decision
        # travels on the request, which is this save's own (the ModelAdmin serves them all).
        request.authentication_after_save = changes.after_save(
            obj,
            changed_fields=changed,
            continue_editing="_continue" in request.POST,
            may_sign_in=self.has_authorize_permission(request),
        )

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        return self._after_save(request, obj) or super().response_change(request, obj)

    def _after_save(self, request, obj):
        """Go on to Microsoft, or fetch an app-only token, as `save_model` decided; first,
        a certificate connection without its certificate is shown where to add one."""
        if obj.uses_certificate and credentials.missing(obj):
            return certificates.certificate_needed(request, obj)
        step = request.authentication_after_save
        if step is changes.AfterSave.ACQUIRE_TOKEN:
            connection_views.refresh_and_report(request, obj, needed=policies.ALWAYS)
        elif step is changes.AfterSave.SIGN_IN:
            self.message_user(request, f"“{obj}” was saved.", messages.SUCCESS)
            return connection_views.redirect_to_sign_in(request, obj)
        return None
