"""The public endpoint Business Central posts webhook notifications (and handshakes) to.

Thin: `body` reads the body, `inbox` decides and stores; this view checks the envelope
(method, content type, size) and maps the outcome to the status BC acts on. Never a 500:
BC deletes a subscription whose URL answers a status it does not retry, and never a 4xx for
a body that is merely large (over the limit: 503, which BC retries).
"""

import logging

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from authentications.kit.decorators import public_page, rate_limited
from authentications.webhooks import body as notification_body
from authentications.webhooks import inbox
from authentications.webhooks.models import Subscription

logger = logging.getLogger(__name__)

MAX_VALIDATION_TOKEN = 1024
# BC retries a 503 on its own schedule (for up to 36 hours); this says "not at once".
OVERSIZE_RETRY_AFTER = 600


@csrf_exempt  # BC is a server, not a browser with a session; clientState proves each item.
@public_page
@rate_limited("notifications", setting="BC_NOTIFICATION_RATE_LIMIT")
@require_http_methods(["GET", "POST"])
def notifications(request):
    # BC's documentation names the validationToken parameter, not the method: both echo.
    if "validationToken" in request.GET:
        return handshake(request.GET["validationToken"])
    if request.method != "POST":
        response = _plain("Notifications are POSTed here; GET only for a handshake.", 405)
        response["Allow"] = "POST"
        return response
    if request.content_type != "application/json":
        return _plain("Expected application/json.", 415)
    return _receive(request)


def _receive(request):
    limit = settings.BC_NOTIFICATION_MAX_BYTES
    try:
        body = notification_body.spool(request, limit=limit)
    except notification_body.TooLarge as err:
        inbox.refuse_oversize(err.prefix, limit=limit)
        response = _plain("The body is over this site's limit; send it again later.", 503)
        response["Retry-After"] = str(OVERSIZE_RETRY_AFTER)
        return response
    except OSError:
        logger.exception("Could not read or spool a BC notification body; answering 503")
        return _plain("", inbox.RETRY_LATER)
    with body:
        try:
            received = inbox.receive(notification_body.items(body))
        except notification_body.MalformedNotification as err:
            return _plain(str(err), 400)
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


def _plain(text, status):
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
