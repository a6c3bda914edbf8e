"""Public views of a sign-in: Microsoft's callback and the pages a person lands on after it.

Thin: they call `signin.flows` and render the outcome. The Authorization URL's landing page
that starts a sign-in is `links.views`.
"""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from authentications.connections.models import AuthorizationRequest
from authentications.kit.admin_urls import change_url
from authentications.kit.decorators import public_page, rate_limited
from authentications.kit.validators import is_guid
from authentications.signin import flows
from authentications.signin.failures import explain_failure


@csrf_exempt  # Microsoft's form_post is cross-site; the single-use state protects it.
@sensitive_post_parameters()
@sensitive_variables("params")
@public_page
@rate_limited("callback")
@require_http_methods(["GET", "POST"])
def callback(request):
    params = (request.POST if request.method == "POST" else request.GET).dict()
    try:
        auth_request = flows.complete_sign_in(params, request.COOKIES)
    except flows.SignInError as err:
        response = render_sign_in_error(request, err)
    else:
        response = HttpResponseRedirect(_after_grant_url(auth_request), status=303)
    return flows.clear_binding_cookie(response, params.get("state"))


def _after_grant_url(auth_request):
    if auth_request.started_via == AuthorizationRequest.Via.ADMIN:
        return f"{change_url(auth_request.authentication_id)}?signin={auth_request.pk}"
    if auth_request.purpose == AuthorizationRequest.Purpose.ADMIN_CONSENT:
        # The client ID is no secret (Microsoft's own URLs carry it): the page needs it for
        # the step that remains in Business Central.
        client_id = auth_request.authentication.client_id
        return f"{reverse('authentications:consent_granted')}?{urlencode({'client_id': client_id})}"
    return reverse("authentications:granted")


def render_sign_in_error(request, err, *, via=None, purpose=None):
    """The page for a sign-in that did not start or complete; 503 when it may work later.

    `via` is where the sign-in started, for an error raised before a pending sign-in
    existed. Staff who started it in the admin get a link back; a person who followed an
    Authorization URL gets plain words. Neither is shown without proof that this browser
    started the sign-in (`err.auth_request`).
    """
    auth_request = getattr(err, "auth_request", None)
    via = via or (auth_request.started_via if auth_request else None)
    purpose = purpose or (auth_request.purpose if auth_request else None)
    started_in_admin = auth_request and via == AuthorizationRequest.Via.ADMIN
    via_link = via == AuthorizationRequest.Via.LINK
    context = {
        "message": err.message,
        "code": err.display_code,
        "authentication": auth_request.authentication if started_in_admin else None,
        "failure": explain_failure(err, purpose=purpose) if via_link else None,
        "site_name": settings.SITE_NAME,
    }
    status = 503 if err.transient else 400
    return render(request, "authentications/sign_in_error.html", context, status=status)


@public_page
@require_http_methods(["GET"])
def granted(request):
    return render(request, "authentications/granted.html", {"site_name": settings.SITE_NAME})


@public_page
@require_http_methods(["GET"])
def consent_granted(request):
    client_id = request.GET.get("client_id", "")
    context = {
        "site_name": settings.SITE_NAME,
        "client_id": client_id if is_guid(client_id) else "",
    }
    return render(request, "authentications/admin_consent_granted.html", context)
