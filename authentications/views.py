"""Public views: the link landing page and Microsoft's callback.

Thin: they call `links` and `signin` and render the outcome.
"""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from authentications import links, signin
from authentications.admin_urls import change_url
from authentications.decorators import public_page, rate_limited
from authentications.link_failures import explain_failure
from authentications.models import AuthorizationRequest
from authentications.oauth import ConsentError
from authentications.validators import is_guid


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
    except signin.SignInError as err:
        response = render_sign_in_error(request, err)
    else:
        response = HttpResponseRedirect(_after_grant_url(auth_request), status=303)
    return signin.clear_binding_cookie(response, params.get("state"))


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


@public_page
@rate_limited("landing")
@require_http_methods(["GET", "HEAD", "POST"])
def authorize(request, token):
    """The Authorization URL's landing page. GET only shows it: mail scanners open links."""
    try:
        link = links.authentication_for_link(token)
    except links.LinkError as err:
        return _link_error(request, err)
    if request.method == "POST":
        return _start_link_sign_in(request, link)
    template = "landing_admin_consent.html" if link.is_admin_consent else "landing.html"
    response = render(request, f"authentications/{template}", _landing_context(link))
    # "same-origin", not "no-referrer": under no-referrer browsers send `Origin: null` on
    # this page's own form POST, which Django's CSRF check refuses. same-origin still keeps
    # the link's URL (it holds the token) from reaching anyone but us.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _landing_context(link):
    authentication = link.authentication
    return {
        "site_name": settings.SITE_NAME,
        "authentication_name": authentication.name,
        "environment": authentication.environment_name,
        # The name to sign in with: a guest's home address; none for an object ID.
        "expected_user": signin.login_hint(authentication.expected_user),
        "expires_at": link.expires_at,
        "client_id": authentication.client_id,  # Public: Entra shows it on its own pages.
        "tenant_id": authentication.tenant_id,
    }


def _start_link_sign_in(request, link):
    start_flow = signin.start_admin_consent if link.is_admin_consent else signin.start_sign_in
    try:
        start = start_flow(link.authentication, via=AuthorizationRequest.Via.LINK)
    except ConsentError as err:
        via = AuthorizationRequest.Via.LINK
        return render_sign_in_error(request, err, via=via, purpose=link.purpose)
    # public_page gives the redirect no-referrer: Microsoft must not see the link token.
    return signin.set_binding_cookie(HttpResponseRedirect(start.authorize_url), start)


def _link_error(request, err):
    context = {"message": err.message, "code": err.code, "site_name": settings.SITE_NAME}
    return render(request, "authentications/link_error.html", context, status=err.status)
