"""Moving endpoints between environments: point them at another authentication, or copy one.

Development, staging and production are one authentication each; an endpoint moves by
changing its authentication. Its company moves by name, since every environment gives its
companies ids of its own: the new authentication is asked which companies it reaches, and
a company it does not reach is dropped (the endpoint then asks for one) rather than kept
with an id that would be refused.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from authentications.connections.diagnostics import describe_error
from authentications.connections.models import Event
from authentications.connections.tokens import bc_client
from authentications.endpoints.models import Endpoint
from authentications.kit.formatting import sentence
from bcconnect.errors import BcconnectError

COPY_SUFFIX = " (copy)"


@dataclass
class Move:
    endpoint: Endpoint
    url_before: str
    url_after: str
    company_before: str
    company_after: str  # The name kept, or "" when it is dropped.
    company_id_after: str
    note: str = ""

    @property
    def stamp(self):
        """Which version of the endpoint this move was planned for (see `confirmed`)."""
        return version_stamp(self.endpoint)


def version_stamp(endpoint):
    return f"{endpoint.pk}@{endpoint.updated_at.isoformat()}"


def confirmed(moves, stamps):
    """The moves whose endpoint is still the version the review page showed.

    The confirmation posts the stamps it showed; the moves are planned again from the
    database, so an endpoint edited after the review (or a confirmation posted without one)
    is left alone rather than moved as nobody saw it.
    """
    stamps = set(stamps)
    return [move for move in moves if move.stamp in stamps]


def plan_moves(endpoints, target):
    """What pointing `endpoints` at `target` changes, one `Move` each; nothing is saved."""
    companies, problem = _companies(target)
    return [_plan(endpoint, target, companies, problem) for endpoint in endpoints]


def _companies(target):
    try:
        found = companies_reached(target)
    except BcconnectError as err:
        return {}, describe_error(err)
    return {c.get("name") or c.get("displayName"): c["id"] for c in found}, ""


def _plan(endpoint, target, companies, problem):
    before = _url(endpoint)
    moved = Endpoint(**{f.attname: getattr(endpoint, f.attname) for f in Endpoint._meta.fields})
    moved.authentication = target
    moved.company_id = companies.get(endpoint.company_name, "") if endpoint.company_id else ""
    moved.company_name = endpoint.company_name if moved.company_id else ""
    note = ""
    if endpoint.company_id and not moved.company_id:
        note = problem or f"“{target}” does not reach the company {endpoint.company_name}"
        note += ": choose the company again after the move."
    return Move(
        endpoint=endpoint,
        url_before=before,
        url_after=_url(moved),
        company_before=endpoint.company_name,
        company_after=moved.company_name,
        company_id_after=moved.company_id,
        note=note,
    )


def _url(endpoint):
    try:
        return endpoint.url()
    except BcconnectError as err:
        return f"({err.message})"


def apply_moves(moves, target, *, actor=""):
    """Point each planned endpoint at `target`, unless it was moved or edited meanwhile.

    Returns the endpoints moved. Each move is recorded on both authentications.
    """
    done = []
    for move in moves:
        endpoint = move.endpoint
        with transaction.atomic():
            changed = Endpoint.objects.filter(
                pk=endpoint.pk,
                authentication_id=endpoint.authentication_id,
                updated_at=endpoint.updated_at,
            ).update(
                authentication=target,
                company_id=move.company_id_after,
                company_name=move.company_after,
                updated_at=timezone.now(),
            )
            if not changed:
                continue
            _record(move, target, actor)
        done.append(endpoint)
    return done


def _record(move, target, actor):
    endpoint, source = move.endpoint, move.endpoint.authentication
    detail = f"Endpoint “{endpoint}” moved from “{source}” to “{target}”."
    if move.company_before:
        detail += " " + sentence(f"Company: {move.company_before} → {move.company_after or 'none'}")
    for authentication in {source.pk: source, target.pk: target}.values():
        authentication.record(Event.Kind.ENDPOINT_MOVED, actor=actor, detail=detail)


def duplicate(endpoint):
    """A copy of `endpoint` under a free name, untested.

    Each candidate name is tried by inserting it (in a savepoint), not by looking first:
    two staff duplicating at once would both see the same name free, and the second save
    would fail on the unique name.
    """
    copy = Endpoint(
        **{
            f.attname: getattr(endpoint, f.attname)
            for f in Endpoint._meta.fields
            if f.attname not in ("id", "created_at", "updated_at") and not _is_test(f.attname)
        }
    )
    for candidate in _copy_names(endpoint.name):
        copy.name = candidate
        try:
            with transaction.atomic():
                copy.save(force_insert=True)
            return copy
        except IntegrityError:
            if not Endpoint.objects.filter(name=candidate).exists():
                raise  # Not the name: nothing to try again.
    raise ValueError("No free name for the copy.")


def _is_test(attname):
    return attname.startswith("last_test")


def _copy_names(name):
    max_length = Endpoint._meta.get_field("name").max_length
    for number in range(1, 1000):
        suffix = COPY_SUFFIX if number == 1 else f" (copy {number})"
        yield name[: max_length - len(suffix)] + suffix


def companies_reached(authentication):
    """The companies `authentication` reaches, as BC lists them (raises when it cannot say)."""
    return bc_client(authentication).companies()


def set_company(endpoint, company_id):
    """Give `endpoint` the company `company_id`, if its authentication really reaches it.

    Returns the company BC listed, or None (nothing changed); "" clears the company. The
    update is fenced on the authentication that listed it: an endpoint pointed at another
    authentication meanwhile keeps what the move gave it, not another environment's id.
    """
    if company_id == "":
        chosen = {"id": "", "name": ""}
    else:
        companies = companies_reached(endpoint.authentication)
        chosen = next((c for c in companies if c.get("id") == company_id), None)
        if chosen is None:
            return None
    changed = Endpoint.objects.filter(
        pk=endpoint.pk, authentication_id=endpoint.authentication_id
    ).update(
        company_id=chosen["id"],
        company_name=chosen.get("name", ""),
        updated_at=timezone.now(),
    )
    if not changed:
        return None
    endpoint.company_id, endpoint.company_name = chosen["id"], chosen.get("name", "")
    return chosen
