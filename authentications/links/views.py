"""The Authorization URL's landing page: what a person sees when they open the link.

Thin: `link_tokens` opens the link, `signin.flows` starts the sign-in (or admin consent) it
grants, and `signin.views` words a sign-in that cannot start.
"""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from authentications.connections import link_tokens
from authentications.connections.models import AuthorizationRequest
from authentications.connections.oauth import ConsentError
from authentications.kit.decorators import public_page, rate_limited
from authentications.signin import flows
from authentications.signin.views import render_sign_in_error


@public_page
@rate_limited("landing")
@require_http_methods(["GET", "HEAD", "POST"])
def authorize(request, token):
    """The Authorization URL's landing page. GET only shows it: mail scanners open links."""
    try:
        link = link_tokens.authentication_for_link(token)
    except link_tokens.LinkError as err:
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
        "expected_user": flows.login_hint(authentication.expected_user),
        "expires_at": link.expires_at,
        "client_id": authentication.client_id,  # Public: Entra shows it on its own pages.
        "tenant_id": authentication.tenant_id,
    }


def _start_link_sign_in(request, link):
    start_flow = flows.start_admin_consent if link.is_admin_consent else flows.start_sign_in
    try:
        start = start_flow(link.authentication, via=AuthorizationRequest.Via.LINK)
    except ConsentError as err:
        via = AuthorizationRequest.Via.LINK
        return render_sign_in_error(request, err, via=via, purpose=link.purpose)
    # public_page gives the redirect no-referrer: Microsoft must not see the link token.
    return flows.set_binding_cookie(HttpResponseRedirect(start.authorize_url), start)


def _link_error(request, err):
    context = {"message": err.message, "code": err.code, "site_name": settings.SITE_NAME}
    return render(request, "authentications/link_error.html", context, status=err.status)
