"""Every call is recorded once its answer is complete: who, what, how it ended, how big.

Never a token, a key or a body: the key by its prefix, the path with the names of its query
options but not their values (an OData `$filter` may hold customer data). A streamed answer
is recorded when its last byte is sent (or the caller hangs up), so its size and duration
are the real ones.
"""

import ipaddress
import time
from urllib.parse import parse_qsl, quote

from django.http import StreamingHttpResponse

from authentications.api.models import ApiCall, ApiKey
from authentications.kit import signals
from authentications.kit.decorators import client_ip
from authentications.kit.turns import one_writer

SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986's unreserved and sub-delims: left as they are.


def recorded_path(request) -> str:
    """The path, percent-encoded (no control character reaches a log or the database), and
    the names of its query options without their values."""
    query = request.META.get("QUERY_STRING", "")
    names = dict.fromkeys(name for name, _ in parse_qsl(query, keep_blank_values=True))
    options = "&".join(f"{quote(name, safe=SAFE)}=" for name in names)
    return (quote(request.path, safe=SAFE) + (f"?{options}" if options else ""))[:1000]


def client_address(request):
    """The caller's IP address (behind a proxy, from BC_CLIENT_IP_HEADER), or None."""
    try:
        return str(ipaddress.ip_address(client_ip(request)))
    except ValueError:
        return None


class Audited:
    """A DRF view mixin: records the call after its answer, whatever the answer."""

    audit_authentication_id = None  # Set by a view once the key may use the authentication.

    def dispatch(self, request, *args, **kwargs):
        self.audit_started = time.perf_counter()
        return super().dispatch(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        call = self._call(request, response)
        call.scope = self._scope(request)
        if isinstance(response, StreamingHttpResponse):
            response.streaming_content = _counted(
                response.streaming_content, call, self.audit_started
            )
        elif hasattr(response, "add_post_render_callback"):
            response.add_post_render_callback(
                lambda done: _save(call, len(done.content), self.audit_started)
            )
        else:
            _save(call, len(response.content), self.audit_started)
        return response

    def _scope(self, request):
        """The scope the call needed, as the metrics count it ("none": any usable key)."""
        scopes = self.required_scopes(request)
        return str(scopes[0]) if scopes else "none"

    def _call(self, request, response):
        key = request.auth if isinstance(request.auth, ApiKey) else None
        return ApiCall(
            key=key,
            key_prefix=key.prefix if key else "",
            authentication_id=self.audit_authentication_id,
            method=request.method[:10],
            path=recorded_path(request),
            status=response.status_code,
            code=_code(response),
            client_ip=client_address(request),
        )


def _code(response):
    """The problem's `code` of an error answer (the proxy sets `problem_code` on its own)."""
    data = getattr(response, "data", None)
    code = data.get("code", "") if isinstance(data, dict) else ""
    return str(getattr(response, "problem_code", "") or code)[:50]


def _counted(chunks, call, started):
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            yield chunk
    finally:
        _save(call, size, started)


def _save(call, size, started):
    call.bytes = size
    call.duration_ms = round((time.perf_counter() - started) * 1000)
    with one_writer():
        call.save()
    signals.api_call.send(sender=ApiCall, scope=call.scope, status=call.status)
