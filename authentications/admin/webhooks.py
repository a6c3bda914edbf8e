"""The admin for webhook subscriptions and the notifications they delivered.

Adding a subscription creates it at BC (with the handshake); deleting one deletes it at BC.
Parked notifications (their handler kept failing or killed its worker) and those no handler
took are listed under "Needs attention" with their error and a "Retry / replay" action.
"""

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse

from authentications.admin import columns
from authentications.webhooks import subscriptions, tasks
from authentications.webhooks.forms import SubscriptionForm
from authentications.webhooks.models import ChangeNotification, Subscription

LATEST = 20
# What the list and the change page show of a subscription's life.
STATE = (
    "status",
    "expires_at",
    "last_notification_at",
    "notifications_received",
    "notifications_dropped",
    "consecutive_failures",
)
# What was received but could not be stored: on the change page, not in the list.
NOT_STORED = ("notifications_malformed", "oversize_refused", "last_oversize_at")


@admin.display(description="Latest notifications")
def latest_notifications(obj):
    rows = obj.notifications.order_by("-id")[:LATEST] if obj.pk else []
    return render_to_string("admin/authentications/subscription/_latest.html", {"rows": rows})


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = (
        "__str__",
        "status",
        "expires_at",
        "last_notification_at",
        "consecutive_failures",
    )
    list_filter = ("status", "entity", "authentication")
    actions = ["renew_now"]
    readonly_fields = (
        "authentication",
        "company_name",
        "company_id",
        "api_path",
        "entity",
        "subscription_id",
        *STATE,
        *NOT_STORED,
        "last_error",
        latest_notifications,
    )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """No "Save and continue editing" (Django then says "You may edit it again below"):
        a subscription is only read once made at BC, so its page has no Save either."""
        extra_context = {**(extra_context or {}), "show_save_and_continue": False}
        if object_id is not None:
            extra_context["show_save"] = False
        return super().changeform_view(request, object_id, form_url, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        if "_continue" not in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"The subscription “{obj}” was added.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:authentications_subscription_change", args=[obj.pk])
        )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else ["authentication", "company", "api_path", "entity"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        obj.save()
        # The admin saves inside a transaction; BC's handshake reaches us on another
        # connection, which sees the row and its open window only once it is committed.
        transaction.on_commit(lambda: self._create_at_bc(request, obj))

    def _create_at_bc(self, request, obj):
        try:
            subscriptions.create(obj, actor=request.user.get_username())
        except subscriptions.SubscriptionError as err:
            self.message_user(request, f"Not created at BC: {err.message}", messages.ERROR)
        else:
            self.message_user(request, "Created at Business Central.", messages.SUCCESS)

    def delete_model(self, request, obj):
        self._stop(request, obj)
        obj.delete()

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def _stop(self, request, obj):
        try:
            subscriptions.stop(obj, actor=request.user.get_username())
        except subscriptions.SubscriptionError as err:
            self.message_user(
                request,
                f"{obj}: BC did not delete it ({err.message}); it answers 404 to its next "
                "notification, so BC deletes it then, or it expires.",
                messages.WARNING,
            )

    @admin.action(description="Renew now")
    def renew_now(self, request, queryset):
        for obj in queryset:
            try:
                _, outcome = subscriptions.renew(obj, actor=request.user.get_username())
            except subscriptions.SubscriptionError as err:
                self.message_user(request, f"{obj}: {err.message}", messages.ERROR)
            else:
                self.message_user(request, f"{obj}: {outcome}.", messages.SUCCESS)


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Parked and no-handler notifications: nothing delivers them until a person acts."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Needs attention (parked, no handler)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=ChangeNotification.NEEDS_ATTENTION)
        return queryset


@admin.register(ChangeNotification)
class ChangeNotificationAdmin(admin.ModelAdmin):
    list_display = (
        "received_at",
        columns.notification_change,
        "status",
        "attempts",
        columns.short_error,
    )
    list_filter = (NeedsAttentionFilter, "status", "change_type", "entity", "subscription")
    actions = ["retry"]
    readonly_fields = [
        field.name for field in ChangeNotification._meta.fields if field.name != "id"
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        """Retrying runs the site's handlers again: staff who may change notifications."""
        return request.user.has_perm("authentications.change_changenotification")

    @admin.action(description="Retry / replay (parked, no handler)", permissions=["retry"])
    def retry(self, request, queryset):
        replayed = tasks.replay(queryset)
        count = sum(replayed.queued.values())
        self.message_user(request, f"{count} notifications queued again.", messages.SUCCESS)
        for entity, left in sorted(replayed.unhandled.items()):
            self.message_user(
                request,
                f"{left} left as they are: still no handler for {entity} (register one with "
                f'@change_notifications.on("{entity}"), then replay).',
                messages.WARNING,
            )
