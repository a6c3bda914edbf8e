"""The admin for API keys and their audit: people make and revoke keys here, services use them.

Making a key needs `add_apikey`, revoking it `revoke_apikey`; staff who may only view see
names, prefixes and use, never a key (only its hash is stored). The key is shown once, on
the page the add form answers with: not in a message, which may travel in a cookie.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from authentications.api.models import ApiCall, ApiKey
from authentications.api.scopes import Scope
from authentications.api.throttles import valid_rate
from authentications.kit.formatting import when


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Running a write endpoint needs bc.write as well as endpoints.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "name",
            "scopes",
            "authentications",
            "all_authentications",
            "expiry_date",
            "rate_limit",
        ]

    def clean_rate_limit(self):
        rate = self.cleaned_data["rate_limit"].strip()
        if rate and not valid_rate(rate):
            raise forms.ValidationError("Write it as a number/period, e.g. 600/minute.")
        return rate

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_authentications") and not cleaned.get("authentications"):
            raise forms.ValidationError("Choose the authentications this key may use.")
        return cleaned


@admin.display(description="Scopes")
def scopes_display(obj):
    return ", ".join(obj.scopes) or "none"


@admin.display(description="Authentications")
def authentications_display(obj):
    if obj.all_authentications:
        return "all"
    return ", ".join(a.name for a in obj.authentications.all()) or "none"


@admin.display(description="Last used", ordering="last_used_at")
def last_used(obj):
    if not obj.last_used_at:
        return "never"
    return f"{when(obj.last_used_at)} from {obj.last_used_ip or 'unknown'}"


@admin.display(description="State")
def state(obj):
    if obj.revoked:
        return "revoked"
    return "expired" if obj.has_expired else "active"


@admin.display(description="Calls")
def calls_link(obj):
    url = reverse("admin:authentications_apicall_changelist") + f"?key__id__exact={obj.pk}"
    return format_html('<a href="{}">audit</a>', url)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", state, scopes_display, last_used, "owner", calls_link)
    list_filter = ("revoked", "owner")
    search_fields = ("name", "prefix")
    filter_horizontal = ("authentications",)
    readonly_fields = ("prefix", "owner", "created", last_used, "revoked")
    actions = ["revoke_keys"]

    def get_fields(self, request, obj=None):
        fields = list(ApiKeyForm.Meta.fields)
        if obj is not None:
            fields[1:1] = ["prefix", "owner", "created", "revoked", last_used]
        return fields

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly.append("all_authentications")  # Only a superuser hands out "all".
        return readonly

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    def has_revoke_permission(self, request, obj=None):
        return request.user.has_perm("authentications.revoke_apikey")

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        count = queryset.filter(revoked=False).update(revoked=True)
        messages.success(request, f"Revoked {count} API key(s): refused from the next request.")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
            request._bc_plaintext = obj.assign_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "plaintext": request._bc_plaintext,
            "title": "API key created",
        }
        template = "admin/authentications/apikey/created.html"
        response = TemplateResponse(request, template, context)
        add_never_cache_headers(response)  # The key must not stay in any cache.
        return response


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    """The audit: read only, filterable by key, authentication, status and method."""

    list_display = (
        "at",
        "key_prefix",
        "authentication",
        "method",
        "path",
        "status",
        "code",
        "duration_ms",
        "bytes",
        "client_ip",
    )
    list_filter = ("key", "authentication", "status", "method")
    list_select_related = ("authentication",)
    search_fields = ("path", "key_prefix", "code")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
