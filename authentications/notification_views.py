"""The public endpoint Business Central posts webhook notifications (and handshakes) to.

Thin: `notification_inbox` decides and stores; this view checks the envelope (method,
content type, size) and maps the outcome to the status BC acts on. Never a 500: BC deletes
a subscription whose URL answers a status it does not retry.
"""

import logging

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import notification_inbox
from .decorators import public_page, rate_limited
from .subscription_models import Subscription

logger = logging.getLogger(__name__)

MAX_VALIDATION_TOKEN = 1024


@csrf_exempt  # BC is a server, not a browser with a session; clientState proves each item.
@public_page
@rate_limited("notifications", setting="BC_NOTIFICATION_RATE_LIMIT")
@require_POST
def notifications(request):
    if "validationToken" in request.GET:
        return handshake(request.GET["validationToken"])
    if request.content_type != "application/json":
        return _plain("Expected application/json.", 415)
    body = _read_body(request)
    if body is None:
        return _plain("The body is too large.", 413)
    try:
        items = notification_inbox.parse(body)
    except notification_inbox.MalformedNotification as err:
        return _plain(str(err), 400)
    received = notification_inbox.receive(items)
    logger.info(
        "BC notifications: %d stored, %d duplicate, %d dropped; answered %d",
        received.stored,
        received.duplicates,
        received.dropped,
        received.status,
    )
    return _plain("", received.status)


def handshake(token):
    """Echo BC's token, only while one of our create or renew requests is at BC."""
    if not token or len(token) > MAX_VALIDATION_TOKEN or not token.isprintable():
        return _plain("Invalid validationToken.", 400)
    if not Subscription.objects.filter(handshake_until__gt=timezone.now()).exists():
        return _plain("No subscription is being created or renewed.", 403)
    return _plain(token, 200)


def _read_body(request):
    """The body, or None when it exceeds BC_NOTIFICATION_MAX_BYTES (read no further)."""
    limit = settings.BC_NOTIFICATION_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _plain(text, status):
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
