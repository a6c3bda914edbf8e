"""Counts every answer of the site (the 5xx rate is an alert) and how long it took."""

import time

from authentications.operations import metrics


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.count_response(response.status_code, time.perf_counter() - started)
        return response
