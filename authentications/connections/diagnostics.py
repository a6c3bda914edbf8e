"""Diagnostics: checking a connection and discovering what it reaches.

The admin calls these flows, and they answer in plain words for staff: an error becomes
a sentence (`describe_error`, which the `bc` command uses too), never a traceback, and
never holds a token.
"""

from dataclasses import dataclass, field
from urllib.parse import quote

from django.conf import settings

from authentications.connections import changes
from authentications.connections.tokens import TokenError, bc_client
from authentications.kit.validators import validate_base_url
from bcconnect.client import BusinessCentralError

SHOWN_COMPANIES = 3


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    companies: list = field(default_factory=list)


@dataclass
class Environment:
    name: str
    type: str
    base_url: str
    companies: list = field(default_factory=list)
    error: str = ""


def describe_error(err, *, with_http=False):
    """One sentence a person can act on, from any BcconnectError; never a token.

    `with_http` gives, for a BC error, the HTTP status and request id (what BC's support
    asks for) instead of advice: the command line shows that, the admin the advice.
    """
    if not isinstance(err, BusinessCentralError):
        return err.message
    if with_http:
        return str(err)
    text = err.message
    if err.code and err.code not in text:
        text = f"{text} ({err.code})"
    advice = what_to_do(err)
    if advice:
        text = f"{text} {advice}"
    elif err.transient:
        text += " Business Central is busy or unreachable; try again in a minute."
    return text


def what_to_do(err):
    """Advice for the BC refusals a person can fix, or "" (the generic words then apply)."""
    message = err.message.lower()
    if "licens" in message or "licenc" in message:
        return (
            "The signed-in user has no Business Central licence that allows this: assign "
            "one in the Microsoft 365 admin center, or sign in as a licensed user."
        )
    if err.status == 403:
        return (
            "The signed-in user (or, for service-to-service, the app's Microsoft Entra "
            "application card in Business Central) lacks a permission: ask a Business "
            "Central administrator to assign a permission set that allows it."
        )
    if err.code == "BadRequest_ResourceNotFound" or (
        err.status in (400, 404) and "company" in message
    ):
        return (
            "The company is not in this environment (each environment has its own company "
            "ids): choose the company again."
        )
    if err.status == 429:
        wait = f"{err.retry_after:.0f} seconds" if err.retry_after else "a minute"
        return (
            "Business Central is throttling this user's requests (too many at once or per "
            f"minute): try again in {wait}, or run fewer calls at the same time."
        )
    return ""


def check_connection(authentication):
    """Call `companies()` with the stored token: what staff see after "Test connection"."""
    try:
        companies = bc_client(authentication).companies()
    except (TokenError, BusinessCentralError) as err:
        return ConnectionCheck(False, f"“{authentication}”: {_check_failure(authentication, err)}")
    names = [company.get("displayName") or company.get("name", "") for company in companies]
    shown = ", ".join(names[:SHOWN_COMPANIES]) + (", …" if len(names) > SHOWN_COMPANIES else "")
    noun = "company" if len(names) == 1 else "companies"
    message = f"“{authentication}”: Connected: {len(names)} {noun}"
    return ConnectionCheck(True, f"{message} ({shown})" if names else message, names)


def _check_failure(authentication, err):
    """Why the check failed. BC refusing an app-only token that Entra just issued (the client
    already asked for a fresh one) means one thing: BC does not know the app."""
    refused_app = (
        isinstance(err, BusinessCentralError)
        and err.status == 401
        and not authentication.is_user_impersonation
    )
    if not refused_app:
        return describe_error(err)
    return (
        "Microsoft issued the app an access token, but Business Central refused it: the "
        "Microsoft Entra Applications card for the client ID "
        f"{authentication.client_id} is missing or not enabled in Business Central. In Business "
        "Central, search for Microsoft Entra Applications, choose New, enter that client ID, "
        "set State to Enabled and add the permission sets the integration needs (this cannot "
        f"be done from outside Business Central). Business Central said: {describe_error(err)}"
    )


def environment_base_url(tenant_id, environment):
    return f"{settings.BC_API_HOST}/v2.0/{quote(tenant_id)}/{quote(environment)}/api/v2.0"


def discover_environments(authentication):
    """The environments the signed-in user reaches, each with its companies.

    Raises `TokenError` or `BusinessCentralError` when the list itself cannot be read; a
    company list that fails is reported on its environment.
    """
    client = bc_client(authentication)
    environments = []
    for item in client.environments():
        tenant = item.get("aadTenantId") or authentication.tenant_id
        environment = Environment(
            name=item.get("name", ""),
            type=item.get("type", ""),
            base_url=environment_base_url(tenant, item.get("name", "")),
        )
        try:
            companies = bc_client(authentication, base_url=environment.base_url).companies()
            environment.companies = [c.get("displayName") or c.get("name") for c in companies]
        except BusinessCentralError as err:
            environment.error = describe_error(err)
        environments.append(environment)
    return environments


def choose_environment(authentication, name, *, actor=""):
    """Point the authentication at environment `name`, if the user really reaches it.

    A new BC URL is a change to the connection like any other: it revokes the links.
    """
    for environment in discover_environments(authentication):
        if environment.name == name:
            validate_base_url(environment.base_url)  # BC named it; the host rule still holds.
            if environment.base_url != authentication.base_url:
                changes.change_connection(
                    authentication,
                    changes={"base_url": environment.base_url},
                    actor=actor,
                    reason=f"BC URL set to the {environment.name} environment: earlier "
                    "Authorization URLs no longer work.",
                )
            return environment
    return None
