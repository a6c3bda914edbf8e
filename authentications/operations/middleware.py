"""Every request gets an id for its log lines; every answer is counted (5xx is an alert)."""

import time

from django.conf import settings

from authentications.kit import request_context
from authentications.operations import metrics


class RequestIdMiddleware:
    """Bind an id for the request (a trusted proxy's, with LOG_REQUEST_ID_HEADER) and
    answer it in X-Request-ID, so a report can name it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = settings.LOG_REQUEST_ID_HEADER
        given = request.META.get(header, "") if header else ""
        with request_context.bound(request_context.given_or_new(given)) as request_id:
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.count_response(response.status_code, time.perf_counter() - started)
        return response
