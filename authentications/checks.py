"""System checks (`manage.py check`, `check --deploy`) for settings that would weaken security.

They run at start-up and in CI, so a misconfigured deployment is caught before a secret is
stored with the wrong key or a token is sent over plain HTTP.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError
from django.db.models import Count

from authentications.connections.tokens import minimum_lease_seconds
from authentications.kit.validators import LOOPBACK_HOSTS


def _is_https_or_loopback(url):
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
    )


@register(Tags.security)
def check_fernet_keys(app_configs, **kwargs):
    keys = getattr(settings, "FERNET_KEYS", None)
    if not keys:
        return [
            Error(
                "FERNET_KEYS is not set: secrets would be encrypted with SECRET_KEY.",
                hint="Set FERNET_KEYS to one or more comma-separated random keys.",
                id="bcconnect.E001",
            )
        ]
    if settings.SECRET_KEY in keys:
        return [
            Error(
                "FERNET_KEYS contains SECRET_KEY: one leaked key would expose both.",
                hint="Use a separate random key for FERNET_KEYS.",
                id="bcconnect.E002",
            )
        ]
    return []


# Hosts that receive secrets: (setting, why it must be HTTPS, check id).
HTTPS_ONLY = (
    (
        "BC_AUTHORITY_HOST",
        "Client secrets and authorization codes are sent to it.",
        "bcconnect.E004",
    ),
    ("BC_API_HOST", "Bearer tokens are sent to it.", "bcconnect.E005"),
)


@register(Tags.security)
def check_public_urls(app_configs, **kwargs):
    problems = []
    if not _is_https_or_loopback(settings.PUBLIC_BASE_URL):
        problems.append(
            Error(
                f"PUBLIC_BASE_URL ({settings.PUBLIC_BASE_URL}) is not HTTPS.",
                hint="Microsoft Entra accepts plain-HTTP redirect URIs only for localhost.",
                id="bcconnect.E003",
            )
        )
    for name, hint, check_id in HTTPS_ONLY:
        value = getattr(settings, name)
        if urlsplit(value).scheme != "https":
            problems.append(Error(f"{name} ({value}) is not HTTPS.", hint=hint, id=check_id))
    return problems


@register(Tags.security, deploy=True)
def check_email_for_notifications(app_configs, **kwargs):
    backend = settings.EMAIL_BACKEND
    if settings.BC_NOTIFY_EMAILS and backend.endswith(
        ("console.EmailBackend", "dummy.EmailBackend")
    ):
        return [
            Warning(
                "BC_NOTIFY_EMAILS is set but email is not configured: notifications about "
                "broken connections would go nowhere.",
                hint="Set EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587).",
                id="bcconnect.W001",
            )
        ]
    return []


@register()
def check_lease_seconds(app_configs, **kwargs):
    configured, minimum = settings.BC_LEASE_SECONDS, minimum_lease_seconds()
    if configured >= minimum or configured <= 0:
        return []
    return [
        Warning(
            f"BC_LEASE_SECONDS ({configured}) is shorter than the worst case of one token "
            f"refresh with BC_HTTP_TIMEOUT {tuple(settings.BC_HTTP_TIMEOUT)}: {minimum} s are "
            "used instead.",
            hint="Remove BC_LEASE_SECONDS (the lease is derived from BC_HTTP_TIMEOUT), or set "
            f"it to at least {minimum}.",
            id="bcconnect.W002",
        )
    ]


@register(Tags.database)
def check_undelivered_notifications(app_configs, databases=None, **kwargs):
    """Change notifications no handler took, or parked: health a deploy script can read
    (`manage.py check --database default`); they wait for a person, not for cron."""
    if not databases:
        return []
    from authentications.webhooks.models import ChangeNotification

    Status = ChangeNotification.Status
    waiting = (
        ChangeNotification.objects.filter(status__in=ChangeNotification.NEEDS_ATTENTION)
        .values_list("status", "entity")
        .annotate(count=Count("id"))
        .order_by("status", "entity")
    )
    try:
        waiting = list(waiting)
    except DatabaseError:  # Not migrated yet (`migrate` runs the database checks first).
        return []
    problems = []
    for status, entity, count in waiting:
        if status == Status.NO_HANDLER:
            problems.append(
                Warning(
                    f"{count} change notifications of {entity} have no handler: not delivered.",
                    hint=f'Register one with @change_notifications.on("{entity}") (a module '
                    "named in BC_NOTIFICATION_HANDLERS), then run `manage.py "
                    "replay_notifications` (cron also queues them once a handler exists).",
                    id="bcconnect.W003",
                )
            )
        else:
            problems.append(
                Warning(
                    f"{count} change notifications of {entity} are parked: their handler kept "
                    "failing or killed its worker.",
                    hint="See Business Central > Change notifications (Needs attention); fix "
                    "the handler, then use the Retry / replay action or `manage.py "
                    "replay_notifications --parked`.",
                    id="bcconnect.W004",
                )
            )
    return problems
