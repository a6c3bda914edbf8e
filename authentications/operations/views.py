"""The operating door: health for load balancers and systemd, metrics for Prometheus."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from authentications.kit.decorators import client_ip
from authentications.operations import health, metrics


@never_cache
@require_safe
def live(request):
    """The process is up and answers; nothing else is asked (restart it if this fails)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request):
    """It can serve: database, cache, task engine (and Redis when configured) answer."""
    ok, checks = health.run_checks(health.readiness_checks())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


@never_cache
@require_safe
def metrics_view(request):
    """Prometheus's page: 404 unless METRICS_TOKEN is set, then only for its bearer."""
    if not settings.METRICS_TOKEN or not allowed_address(request):
        raise Http404
    if not carries_token(request, settings.METRICS_TOKEN):
        return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


def carries_token(request, token):
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    given = credentials.strip().encode("utf-8", "replace")
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode())


def allowed_address(request):
    allowed = settings.METRICS_ALLOWED_IPS
    return not allowed or client_ip(request) in allowed
