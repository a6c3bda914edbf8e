"""The operating door: health for load balancers and systemd, metrics for Prometheus."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from authentications.operations import health


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
