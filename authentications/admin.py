"""The Django admin for authentications: declarative, with flows delegated to `signin`."""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import changes, cron, link_email, links, oauth, signin, tokens
from .admin_connection import BusinessCentralAdminMixin
from .fields import Undecryptable
from .forms import AuthenticationForm, EmailLinkForm
from .models import Authentication
from .oauth import ConsentError

ENTRA_STEPS = (
    "In Microsoft Entra, open App registrations and select (or create) the app.",
    "Copy its Application (client) ID and Directory (tenant) ID into the fields above.",
    "API permissions > Add a permission > Dynamics 365 Business Central > Delegated "
    "permissions > user_impersonation.",
    "Certificates & secrets > New client secret: copy its Value (not its ID).",
    "Authentication > Add a platform > Web: paste this redirect URI. Microsoft requires "
    "HTTPS, except for http://localhost.",
)


# Shown for a row encrypted with a key no longer in FERNET_KEYS (see fields.Undecryptable).
CANNOT_DECRYPT = "Cannot decrypt: key missing"


def change_url(authentication):
    return reverse("admin:authentications_authentication_change", args=[authentication.pk])


@admin.register(Authentication)
class AuthenticationAdmin(BusinessCentralAdminMixin, admin.ModelAdmin):
    form = AuthenticationForm
    list_display = (
        "name",
        "kind",
        "status_badge",
        "granted_by",
        "token_expiry",
        "last_refresh",
        "consecutive_failures",
        "secret_days_left",
    )
    list_filter = ("status", "kind")
    actions = ["refresh_now", "disconnect"]
    search_fields = ("name", "tenant_id", "client_id", "base_url", "granted_by_upn")
    readonly_fields = (
        "secret_state",
        "redirect_uri",
        "status_badge",
        "access_token_display",
        "token_expiry",
        "granted_by",
        "last_error",
        "event_history",
        "last_refresh",
        "sign_in_valid_until_display",
        "consecutive_failures",
        "secret_days_left",
    )

    class Media:
        css = {"all": ["authentications/admin.css"]}
        js = ["authentications/admin.js"]

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

    def get_fieldsets(self, request, obj=None):
        entra = ["client_id", "tenant_id", "client_secret_expires_on"]
        if self._secret_is_editable(request, obj):
            entra.insert(2, "client_secret")
        if obj is not None:
            entra.insert(-1, "secret_state")
        fieldsets = [
            (None, {"fields": ["name", "kind"]}),
            ("Microsoft Entra app registration", {"fields": [*entra, "redirect_uri"]}),
            ("Business Central", {"fields": ["base_url", "expected_user"]}),
        ]
        if obj is not None:
            connection = [
                "status_badge",
                "access_token_display",
                "token_expiry",
                "granted_by",
                "last_refresh",
                "sign_in_valid_until_display",
                "consecutive_failures",
                "last_error",
            ]
            if not request.user.has_perm("authentications.view_token"):
                connection.remove("access_token_display")
            fieldsets += [
                ("Connection", {"fields": connection}),
                ("History", {"fields": ["event_history"]}),
            ]
        if self._link_visible(request, obj):
            fieldsets.insert(3, ("Authorization URL", {"fields": ["authorization_url"]}))
        return fieldsets

    def _secret_is_editable(self, request, obj):
        """Whether the write-only secret input belongs on the page.

        Django renders a field the user may not change as its value (decrypted, here), so
        whoever may not change the authentication gets "Client secret stored" instead.
        """
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    # --- read-only displays ------------------------------------------------------------

    @admin.display(description="Client secret stored")
    def secret_state(self, obj):
        if isinstance(obj.client_secret, Undecryptable):
            return CANNOT_DECRYPT
        return "stored" if obj.client_secret else "not set"

    @admin.display(description="Redirect URI")
    def redirect_uri(self, obj):
        steps = format_html_join("", "<li>{}</li>", ((step,) for step in ENTRA_STEPS))
        return format_html(
            '<div class="bc-copy"><input id="bc-redirect-uri" type="text" readonly value="{}">'
            '<button type="button" class="button" data-copy-target="bc-redirect-uri">Copy'
            '</button></div><ol class="bc-steps">{}</ol>',
            oauth.redirect_uri(),
            steps,
        )

    @admin.display(description="Authorization URL")
    def authorization_url(self, obj):
        if not links.link_available(obj):
            return "Fill in the app registration and BC URL, then save, to get the link."
        url, expires_at = links.authorization_url(obj)
        who = (
            f"only {obj.expected_user} can use it"
            if obj.expected_user
            else "whoever signs in grants their own Business Central permissions"
        )
        return format_html(
            '<div class="bc-copy"><input id="bc-authorization-url" type="text" readonly '
            'value="{}"><button type="button" class="button" '
            'data-copy-target="bc-authorization-url">Copy</button></div>'
            '<div class="help">Expires {} ({} days). Send it to someone with a Business '
            "Central login: {}. It works once; “Regenerate link” revokes every earlier "
            "link.</div>",
            url,
            timezone.localtime(expires_at).strftime("%Y-%m-%d %H:%M"),
            links.max_age().days,
            who,
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        if obj.cannot_decrypt:
            return format_html('<span class="bc-badge failing">{}</span>', CANNOT_DECRYPT)
        return format_html(
            '<span class="bc-badge {}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="Access token")
    def access_token_display(self, obj):
        if isinstance(obj.access_token, Undecryptable):
            return CANNOT_DECRYPT
        if not obj.access_token:
            return "none"
        return obj.masked_access_token

    @admin.display(description="Token expires", ordering="access_token_expires_at")
    def token_expiry(self, obj):
        expires = obj.access_token_expires_at
        if not expires or not obj.access_token:
            return "—"
        if expires <= timezone.now():
            return format_html(
                "{} (expired)", timezone.localtime(expires).strftime("%Y-%m-%d %H:%M")
            )
        return timezone.localtime(expires).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Granted by", ordering="granted_by_upn")
    def granted_by(self, obj):
        if not obj.granted_at:
            return "—"
        return format_html(
            "{} via {} on {}",
            obj.granted_by_display or "the app itself",
            obj.get_granted_via_display(),
            timezone.localtime(obj.granted_at).strftime("%Y-%m-%d %H:%M"),
        )

    @admin.display(description="Events")
    def event_history(self, obj):
        events = obj.events.all()[:25]
        if not events:
            return "No events yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    event.get_kind_display(),
                    event.actor or "—",
                    event.detail,
                )
                for event in events
            ),
        )
        return format_html(
            '<table class="bc-events"><tr><th>When</th><th>What</th><th>Who</th>'
            "<th>Detail</th></tr>{}</table>",
            rows,
        )

    # --- saving and signing in ----------------------------------------------------------

    @method_decorator(sensitive_post_parameters("client_secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        just_signed_in = bool(
            request.method == "GET"
            and obj is not None
            and signin.recent_grant(obj, request.GET.get("signin", ""))
        )
        if just_signed_in:
            messages.success(request, "Access token received")
        extra_context = {
            **(extra_context or {}),
            **self._change_context(request, obj),
            "bc_just_signed_in": just_signed_in,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _change_context(self, request, obj):
        can_sign_in = (
            obj is not None
            and obj.is_user_impersonation
            and obj.has_credentials()
            and self.has_authorize_permission(request)
        )
        can_refresh = obj is not None and self.has_change_permission(request, obj)
        return {
            "bc_can_sign_in": can_sign_in,
            "bc_can_link": self._link_visible(request, obj),
            "bc_can_refresh": can_refresh,
        }

    def _link_visible(self, request, obj):
        return links.link_available(obj) and self.has_authorize_permission(request)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "authorization_url")

    def save_model(self, request, obj, form, change):
        """Write only the fields the form shows: a refresh stored meanwhile stays stored.

        The token and lease columns of `obj` were loaded when the request began; writing
        them back would undo a refresh (and lose the refresh token Entra just rotated).
        """
        obj._credentials_changed = form.credentials_changed
        if not change:
            super().save_model(request, obj, form, change)
            return
        shown = [field.name for field in obj._meta.concrete_fields if field.name in form.fields]
        if form.credentials_changed:
            changes.change_connection(
                obj,
                changes={name: getattr(obj, name) for name in shown},
                actor=request.user.get_username(),
                reason="The app registration, BC URL or type changed: earlier Authorization "
                "URLs no longer work.",
            )
        else:
            obj.save(update_fields=[*shown, "updated_at"])
        obj.refresh_from_db()  # What happens after Save is decided on what is stored.

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        return self._after_save(request, obj) or super().response_change(request, obj)

    def _after_save(self, request, obj):
        """ "Save" goes on to Microsoft when a user-impersonation sign-in is needed."""
        if not obj.is_user_impersonation:
            return self._acquire_after_save(request, obj)
        if "_continue" not in request.POST:
            return None
        needs_sign_in = obj._credentials_changed or not obj.token_valid_for(0)
        if not needs_sign_in or not self.has_authorize_permission(request):
            return None
        self.message_user(request, f"“{obj}” was saved.", messages.SUCCESS)
        return self._redirect_to_sign_in(request, obj)

    def _redirect_to_sign_in(self, request, obj):
        try:
            start = signin.start_sign_in(
                obj, via=signin.AuthorizationRequest.Via.ADMIN, user=request.user
            )
        except ConsentError as err:
            self.message_user(request, err.message, messages.ERROR)
            return HttpResponseRedirect(change_url(obj))
        return signin.set_binding_cookie(HttpResponseRedirect(start.authorize_url), start)

    def has_authorize_permission(self, request, obj=None):
        return request.user.has_perm("authentications.authorize_authentication")

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/sign-in/",
                self.admin_site.admin_view(self.sign_in_view),
                name="authentications_authentication_sign_in",
            ),
            path(
                "<path:object_id>/refresh/",
                self.admin_site.admin_view(self.refresh_view),
                name="authentications_authentication_refresh",
            ),
        ]
        return custom + self._link_urls() + super().get_urls()

    @method_decorator(require_POST)
    def sign_in_view(self, request, object_id):
        obj = self._object_or_404(request, object_id)
        if not self.has_authorize_permission(request):
            raise PermissionDenied
        if not obj.is_user_impersonation or not obj.has_credentials():
            self.message_user(
                request, "Fill in the app registration and BC URL first.", messages.ERROR
            )
            return HttpResponseRedirect(change_url(obj))
        return self._redirect_to_sign_in(request, obj)

    # --- the Authorization URL ------------------------------------------------------------

    def _link_urls(self):
        return [
            path(
                "<path:object_id>/link/regenerate/",
                self.admin_site.admin_view(self.regenerate_link_view),
                name="authentications_authentication_regenerate_link",
            ),
            path(
                "<path:object_id>/link/email/",
                self.admin_site.admin_view(self.email_link_view),
                name="authentications_authentication_email_link",
            ),
        ]

    def _link_target(self, request, object_id):
        """The authentication whose link to act on: 404 if unknown, 403 without permission."""
        obj = self._object_or_404(request, object_id)
        if not self.has_authorize_permission(request):
            raise PermissionDenied
        return obj

    def _refuse_without_link(self, request, obj):
        """Back to the change page with a message when `obj` can have no link, else None."""
        if links.link_available(obj):
            return None
        self.message_user(
            request,
            "Only a user-impersonation authentication with its app registration and BC URL "
            "filled in has an Authorization URL.",
            messages.ERROR,
        )
        return HttpResponseRedirect(change_url(obj))

    @method_decorator(require_POST)
    def regenerate_link_view(self, request, object_id):
        obj = self._link_target(request, object_id)
        if refused := self._refuse_without_link(request, obj):
            return refused
        links.revoke_links(
            obj,
            actor=request.user.get_username(),
            reason="Link regenerated: earlier Authorization URLs no longer work.",
        )
        self.message_user(
            request,
            "A new Authorization URL was created; every earlier link no longer works.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url(obj))

    def email_link_view(self, request, object_id):
        obj = self._link_target(request, object_id)
        if refused := self._refuse_without_link(request, obj):
            return refused
        form = EmailLinkForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                link_email.send_authorization_url(
                    obj,
                    recipients=form.cleaned_data["recipients"],
                    message=form.cleaned_data["message"],
                    user=request.user,
                )
            except link_email.LinkEmailError as err:
                form.add_error(None, err.message)
            else:
                recipients = ", ".join(form.cleaned_data["recipients"])
                self.message_user(
                    request, f"Authorization URL emailed to {recipients}.", messages.SUCCESS
                )
                return HttpResponseRedirect(change_url(obj))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": obj,
            "form": form,
            "title": f"Email the Authorization URL for {obj}",
            "max_age_days": links.max_age().days,
            "environment": obj.environment_name,
        }
        return TemplateResponse(
            request, "admin/authentications/authentication/email_link.html", context
        )

    # --- token health and Refresh now ---------------------------------------------------

    @admin.display(description="Last successful refresh", ordering="last_refreshed_at")
    def last_refresh(self, obj):
        return _when(obj.last_refreshed_at)

    @admin.display(description="Sign-in valid until")
    def sign_in_valid_until_display(self, obj):
        until = obj.sign_in_valid_until
        if until is None:
            return "no sign-in stored" if obj.is_user_impersonation else "not needed"
        return format_html(
            "{} <span class='help'>(90 days after the refresh token was last used; the cron "
            "job keeps it alive)</span>",
            _when(until),
        )

    @admin.display(description="Client secret expires", ordering="client_secret_expires_on")
    def secret_days_left(self, obj):
        if not obj.client_secret_expires_on:
            return "—"
        days = (obj.client_secret_expires_on - timezone.localdate()).days
        if days < 0:
            return format_html('<span class="bc-badge secret_invalid">expired</span>')
        label = f"{days} day{'s' if days != 1 else ''} left"
        if days <= max(cron.SECRET_REMINDER_DAYS):
            return format_html('<span class="bc-badge failing">{}</span>', label)
        return label

    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request, queryset):
        for obj in queryset:
            self._refresh_and_report(request, obj)

    @method_decorator(require_POST)
    def refresh_view(self, request, object_id):
        obj = self._object_or_404(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        self._refresh_and_report(request, obj)
        return HttpResponseRedirect(change_url(obj))

    def _refresh_and_report(self, request, obj, *, needed=None):
        """Refresh through the same lease as everyone else and say what happened."""
        try:
            result = tokens.refresh(
                obj,
                needed=needed or tokens.refreshed_long_ago(),
                actor=request.user.get_username(),
            )
        except tokens.TokenError as err:
            self.message_user(request, f"“{obj}”: {err.message}", messages.ERROR)
            return False
        expires = _when(result.authentication.access_token_expires_at)
        if result.refreshed:
            text = "Access token received" if not obj.is_user_impersonation else "Refreshed"
            self.message_user(request, f"“{obj}”: {text}, valid until {expires}.", messages.SUCCESS)
        else:
            self.message_user(
                request, f"“{obj}” was refreshed moments ago; valid until {expires}.", messages.INFO
            )
        return True

    def _acquire_after_save(self, request, obj):
        """Service-to-service needs no sign-in: Save acquires a token right away."""
        if obj.has_credentials() and (
            obj._credentials_changed or not obj.token_valid_for(settings.BC_TOKEN_SKEW_SECONDS)
        ):
            self._refresh_and_report(request, obj, needed=lambda row: True)
        return None


def _when(moment):
    if not moment:
        return "—"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
