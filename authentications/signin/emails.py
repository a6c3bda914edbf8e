"""Emails that a grant happened: someone signed in through a link, or an administrator
consented for a tenant.

Sent by the sign-in flow after the grant is stored; a mail failure is logged and never undoes
or hides the grant (`mail.notify_quietly`).
"""

from django.utils import timezone

from authentications import mail


def notify_access_granted(authentication):
    """Tell BC_NOTIFY_EMAILS that someone granted access through a link.

    The grant is already stored; a mail failure is logged and must not undo or hide it.
    """
    context = {
        "authentication_name": authentication.name,
        "environment": authentication.environment_name,
        "granted_by": authentication.granted_by_display or "an unknown account",
        "granted_via": authentication.get_granted_via_display(),
        "granted_at": timezone.localtime(authentication.granted_at),
        "admin_url": mail.admin_url(authentication),
    }
    return mail.notify_quietly(
        "access_granted", context, subject=f"Access granted for {authentication.name}"
    )


def notify_admin_consent(authentication):
    """Tell BC_NOTIFY_EMAILS that an administrator consented for a tenant.

    The grant is already stored; a mail failure is logged and must not undo or hide it.
    """
    context = {
        "authentication_name": authentication.name,
        "environment": authentication.environment_name,
        "tenant_id": authentication.tenant_id,
        "client_id": authentication.client_id,
        "granted_at": timezone.localtime(authentication.granted_at),
        "admin_url": mail.admin_url(authentication),
    }
    return mail.notify_quietly(
        "admin_consent_granted",
        context,
        subject=f"Admin consent granted for {authentication.name}",
    )
