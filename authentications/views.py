"""Public views: Microsoft's callback. Thin: they call `signin` and render its outcome."""

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from . import signin
from .models import AuthorizationRequest
from .oauth import ConsentError
from .public import public_page
from .ratelimit import rate_limited


@csrf_exempt  # Microsoft's form_post is cross-site; the single-use state protects it.
@sensitive_post_parameters()
@sensitive_variables("params")
@public_page
@rate_limited("callback")
@require_http_methods(["GET", "POST"])
def callback(request):
    params = (request.POST if request.method == "POST" else request.GET).dict()
    try:
        auth_request = signin.complete_sign_in(params, request.COOKIES)
    except ConsentError as err:
        response = sign_in_error(request, err)
    else:
        response = HttpResponseRedirect(_after_grant_url(auth_request), status=303)
    return signin.clear_binding_cookie(response, params.get("state"))


def _after_grant_url(auth_request):
    if auth_request.started_via == AuthorizationRequest.Via.ADMIN:
        change_url = reverse(
            "admin:authentications_authentication_change", args=[auth_request.authentication_id]
        )
        return f"{change_url}?signin={auth_request.pk}"
    return reverse("authentications:granted")


def sign_in_error(request, err):
    auth_request = getattr(err, "auth_request", None)
    started_in_admin = auth_request and auth_request.started_via == AuthorizationRequest.Via.ADMIN
    context = {
        "message": err.message,
        "code": err.display_code,
        "authentication": auth_request.authentication if started_in_admin else None,
    }
    status = 503 if err.transient else 400
    return render(request, "authentications/sign_in_error.html", context, status=status)


@public_page
@require_http_methods(["GET"])
def granted(request):
    return render(request, "authentications/granted.html")
