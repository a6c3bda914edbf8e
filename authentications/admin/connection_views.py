"""The authentication admin's object views: sign in, refresh, the link, and Business Central.

Each view loads its object through `object_or_404` with the permission it needs (as
Django's `UserAdmin.user_change_password` does), calls one flow and reports the outcome
as a message on the change page. `urls` registers them all.
"""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from authentications.connections import diagnostics, link_tokens, policies, tokens
from authentications.connections.oauth import ConsentError
from authentications.kit.admin_urls import change_url
from authentications.kit.formatting import sentence, when
from authentications.links import emails
from authentications.links.forms import EmailLinkForm
from authentications.signin import flows
from bcconnect.client import BusinessCentralError


def urls(model_admin):
    """The object views' URLs, behind the admin site's login, named as the admin names its own.

    The change page's buttons post its whole form, so a client secret just typed reaches
    these views too: error reports hide it, as they do for the change form itself.
    """
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    return [
        path(
            f"<path:object_id>/{route}/",
            model_admin.admin_site.admin_view(sensitive_post_parameters("client_secret")(view)),
            {"model_admin": model_admin},
            name=f"{prefix}_{name}",
        )
        for route, view, name in (
            ("sign-in", sign_in, "sign_in"),
            ("admin-consent", admin_consent, "admin_consent"),
            ("refresh", refresh, "refresh"),
            ("link/regenerate", regenerate_link, "regenerate_link"),
            ("link/email", email_link, "email_link"),
            ("test-connection", test_connection, "test_connection"),
            ("environments", environments, "environments"),
        )
    ]


def object_or_404(model_admin, request, object_id, *, may):
    """The object `object_id` names, through the admin's queryset: 404 when there is none
    (a malformed id included), 403 unless `may(request, obj)`."""
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(f"No {model_admin.opts.verbose_name} with the id {object_id!r}.")
    if not may(request, obj):
        raise PermissionDenied
    return obj


def back_to(obj):
    return HttpResponseRedirect(change_url(obj.pk))


# --- signing in and tokens ----------------------------------------------------------------


@require_POST
def sign_in(request, object_id, *, model_admin):
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_authorize_permission)
    if not obj.is_user_impersonation or not obj.has_credentials():
        messages.error(request, "Fill in the app registration and BC URL first.")
        return back_to(obj)
    return redirect_to_sign_in(request, obj)


@require_POST
def admin_consent(request, object_id, *, model_admin):
    """Staff who are Entra administrators of the tenant consent themselves, like a sign-in."""
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_authorize_permission)
    if not link_tokens.link_available(obj, link_tokens.ADMIN_CONSENT):
        messages.error(
            request,
            "Fill in the client ID, secret and BC URL of a service-to-service "
            "authentication first.",
        )
        return back_to(obj)
    start = flows.start_admin_consent(
        obj, via=flows.AuthorizationRequest.Via.ADMIN, user=request.user
    )
    return flows.set_binding_cookie(HttpResponseRedirect(start.authorize_url), start)


def redirect_to_sign_in(request, obj):
    """Off to Microsoft, with the cookie that binds the sign-in to this browser."""
    try:
        start = flows.start_sign_in(
            obj, via=flows.AuthorizationRequest.Via.ADMIN, user=request.user
        )
    except ConsentError as err:
        messages.error(request, err.message)
        return back_to(obj)
    return flows.set_binding_cookie(HttpResponseRedirect(start.authorize_url), start)


@require_POST
def refresh(request, object_id, *, model_admin):
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_change_permission)
    refresh_and_report(request, obj)
    return back_to(obj)


def refresh_and_report(request, obj, *, needed=None):
    """Refresh through the same lease as everyone else and say what happened."""
    try:
        result = tokens.refresh(
            obj,
            needed=needed or policies.forced(),
            actor=request.user.get_username(),
            by_person=True,
        )
    except tokens.TokenError as err:
        messages.error(request, f"“{obj}”: {err.message}")
        return
    expires = when(result.authentication.access_token_expires_at)
    if not result.refreshed:
        messages.info(
            request, sentence(f"“{obj}” was refreshed moments ago; valid until {expires}")
        )
        return
    text = "Refreshed" if obj.is_user_impersonation else "Access token received"
    messages.success(request, sentence(f"“{obj}”: {text}, valid until {expires}"))


# --- the Authorization URL ----------------------------------------------------------------


@require_POST
def regenerate_link(request, object_id, *, model_admin):
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_authorize_permission)
    if refused := refuse_without_link(request, obj):
        return refused
    name = emails.link_name(obj)
    link_tokens.revoke_links(
        obj,
        actor=request.user.get_username(),
        reason=f"Link regenerated: earlier {name}s no longer work.",
    )
    messages.success(request, f"A new {name} was created; every earlier link no longer works.")
    return back_to(obj)


def email_link(request, object_id, *, model_admin):
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_authorize_permission)
    if refused := refuse_without_link(request, obj):
        return refused
    form = EmailLinkForm(request.POST if request.method == "POST" else None)
    link = link_tokens.authorization_url(obj, link_tokens.purpose_of(obj))
    if request.method == "POST" and form.is_valid():
        recipients = form.cleaned_data["recipients"]
        try:
            if request.POST.get("link"):  # The very link this page showed, and no other.
                link = link_tokens.same_link(obj, request.POST["link"])
            emails.send_authorization_url(
                obj,
                recipients=recipients,
                message=form.cleaned_data["message"],
                user=request.user,
                link=link,
            )
        except (emails.LinkEmailError, link_tokens.LinkError) as err:
            form.add_error(None, err.message)
        else:
            name = emails.link_name(obj)
            messages.success(request, f"{name} emailed to {', '.join(recipients)}.")
            return back_to(obj)
    return object_page(
        request,
        model_admin,
        obj,
        "email_link.html",
        title=f"Email the {emails.link_name(obj)} for {obj}",
        link_name=emails.link_name(obj),
        form=form,
        link=link,
        max_age_days=link_tokens.max_age().days,
        environment=obj.environment_name,
    )


def refuse_without_link(request, obj):
    """Back to the change page with a message when `obj` can have no link, else None."""
    if link_tokens.link_available(obj, link_tokens.purpose_of(obj)):
        return None
    messages.error(
        request,
        "Only a user-impersonation authentication with its app registration and BC URL "
        "filled in has an Authorization URL (a service-to-service one, an Admin consent URL).",
    )
    return back_to(obj)


# --- Business Central ---------------------------------------------------------------------


@require_POST
def test_connection(request, object_id, *, model_admin):
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_change_permission)
    report_check(request, diagnostics.check_connection(obj))
    return back_to(obj)


def report_check(request, check):
    messages.add_message(request, messages.SUCCESS if check.ok else messages.ERROR, check.message)


def environments(request, object_id, *, model_admin):
    """List environments and companies (GET); point the BC URL at one (POST)."""
    obj = object_or_404(model_admin, request, object_id, may=model_admin.has_change_permission)
    if request.method == "POST":
        return choose_environment(request, obj)
    return object_page(
        request,
        model_admin,
        obj,
        "environments.html",
        title=f"Environments and companies for {obj}",
        **discovery_context(obj),
    )


def discovery_context(obj):
    """The environments and companies the stored token reaches, or why they are unknown."""
    try:
        found = diagnostics.discover_environments(obj)
    except (tokens.TokenError, BusinessCentralError) as err:
        return {"bc_environments": [], "bc_discovery_error": diagnostics.describe_error(err)}
    return {"bc_environments": found, "bc_discovery_error": ""}


def choose_environment(request, obj):
    name = request.POST.get("bc_environment", "")
    try:
        chosen = diagnostics.choose_environment(obj, name, actor=request.user.get_username())
    except (tokens.TokenError, BusinessCentralError) as err:
        messages.error(request, diagnostics.describe_error(err))
        return back_to(obj)
    if chosen is None:
        messages.error(request, f"“{name}” is not an environment this user reaches.")
    else:
        messages.success(
            request,
            f"Business Central URL set to the {chosen.name} environment: {chosen.base_url}",
        )
    return back_to(obj)


# --- pages ----------------------------------------------------------------------------------


def object_page(request, model_admin, obj, template, *, title, **context):
    """An admin page about `obj`, from templates/admin/authentications/<its model>/."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": obj,
        "title": title,
        **context,
    }
    folder = f"admin/{model_admin.opts.app_label}/{model_admin.opts.model_name}"
    return TemplateResponse(request, f"{folder}/{template}", context)


def change_page_context(model_admin, request, obj):
    """The change page's buttons. Back from a sign-in, it also says "Access token received"
    and lists the environments and companies the new token reaches."""
    if obj is None:  # The admin answers for a missing object itself.
        return {}
    may_change = model_admin.has_change_permission(request, obj)
    context = {
        "bc_can_sign_in": (
            obj.is_user_impersonation
            and obj.has_credentials()
            and model_admin.has_authorize_permission(request)
        ),
        "bc_can_link": model_admin.shows_authorization_url(request, obj),
        "bc_link_name": emails.link_name(obj),
        "bc_can_consent": (
            link_tokens.link_available(obj, link_tokens.ADMIN_CONSENT)
            and model_admin.has_authorize_permission(request)
        ),
        "bc_can_refresh": may_change,
    }
    grant = request.method == "GET" and flows.recent_grant(obj, request.GET.get("signin", ""))
    if grant:
        consent = grant.purpose == flows.AuthorizationRequest.Purpose.ADMIN_CONSENT
        messages.success(
            request,
            "Admin consent granted, access token received" if consent else "Access token received",
        )
        if obj.access_token and may_change:
            context.update(discovery_context(obj))
    return context
