"""Certificate credentials: add one (generated or uploaded), roll over to the next, delete.

An authentication has at most one *current* certificate, which every token request signs
with, and one *next* one during a rollover. Switching asks Entra first: a token request
signed with the next certificate must succeed, or nothing changes, so there is no moment
when the connection holds a certificate Entra does not know.
"""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from authentications.certificates import keypairs
from authentications.certificates.models import Certificate
from authentications.connections import oauth
from authentications.connections.models import Event
from authentications.kit import formatting
from authentications.kit.fields import KEY_MISSING
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)


class CertificateFlowError(BcconnectError):
    """A certificate step that did not happen; the message says why, for people."""


def subject_for(authentication):
    """The certificate's common name: the authentication and the site, as Entra lists it."""
    site = urlsplit(settings.PUBLIC_BASE_URL).hostname or settings.SITE_NAME
    return f"{authentication.name} ({site})"


def validity_days():
    return max(1, settings.BC_CERTIFICATE_VALID_MONTHS * 365 // 12)


def generate(authentication, *, actor):
    """Make a key pair here: the current certificate, or the next one when there is one."""
    pair = keypairs.generate(subject_for(authentication), valid_days=validity_days())
    return _add(authentication, pair, source=Certificate.Source.GENERATED, actor=actor)


def add_uploaded(authentication, pair, *, actor):
    """Keep an uploaded key pair (already checked by `keypairs`), like a generated one."""
    return _add(authentication, pair, source=Certificate.Source.UPLOADED, actor=actor)


def _add(authentication, pair, *, source, actor):
    role = Certificate.Role.CURRENT
    if Certificate.objects.current_for(authentication):
        role = Certificate.Role.NEXT
    if role == Certificate.Role.NEXT and Certificate.objects.next_for(authentication):
        raise CertificateFlowError(
            "There is a next certificate already: switch to it, or delete it first.",
            code="next_exists",
        )
    certificate = pair.certificate
    try:
        with transaction.atomic():
            added = Certificate.objects.create(
                authentication=authentication,
                role=role,
                source=source,
                private_key=pair.private_key_pem,
                certificate_pem=pair.certificate_pem,
                subject=certificate.subject.rfc4514_string()[:255],
                thumbprint_sha1=keypairs.thumbprint(pair.certificate_pem),
                thumbprint_sha256=keypairs.thumbprint(pair.certificate_pem, "sha256"),
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
            )
            _record(authentication, added, actor=actor, what=f"{source} as the {role} one")
    except IntegrityError as err:  # Someone else added one at the same moment.
        raise CertificateFlowError(
            "Another certificate was added at the same moment; reload the page.",
            code="certificate_race",
        ) from err
    return added


def switch_to_next(authentication, *, actor):
    """Make the next certificate the current one, once Entra accepts a token request with it.

    The old current certificate stays (as *old*) until someone deletes it, both here and in
    Entra: a request signed with it a moment ago still succeeds.
    """
    upcoming = Certificate.objects.next_for(authentication)
    if upcoming is None:
        raise CertificateFlowError("There is no next certificate to switch to.", code="no_next")
    if not upcoming.private_key:  # Encrypted with a key no longer in FERNET_KEYS.
        raise CertificateFlowError(KEY_MISSING, code="key_missing")
    try:
        oauth.acquire_for_client(authentication, certificate=upcoming)
    except oauth.EntraError as err:
        if err.secret_invalid:
            raise CertificateFlowError(
                "Entra does not accept the next certificate yet: upload it to the app "
                "registration (Certificates & secrets > Certificates > Upload certificate), "
                f"then switch again. Nothing changed. ({err.display_code})",
                code="next_not_uploaded",
            ) from err
        raise CertificateFlowError(
            f"The next certificate could not be tried: {err.message} Nothing changed.",
            code=err.code,
        ) from err
    with transaction.atomic():
        current = authentication.certificates.filter(role=Certificate.Role.CURRENT)
        current.update(role=Certificate.Role.OLD)
        if not Certificate.objects.filter(pk=upcoming.pk, role=Certificate.Role.NEXT).update(
            role=Certificate.Role.CURRENT
        ):
            transaction.set_rollback(True)
            raise CertificateFlowError(
                "The next certificate was switched or deleted meanwhile; reload the page.",
                code="certificate_race",
            )
        _record(authentication, upcoming, actor=actor, what="switched to: now the current one")
    upcoming.role = Certificate.Role.CURRENT
    return upcoming


def delete(authentication, certificate_id, *, actor):
    """Delete a next or old certificate; the current one stays until another replaces it."""
    certificate = (
        authentication.certificates.exclude(role=Certificate.Role.CURRENT)
        .filter(pk=certificate_id)
        .first()
    )
    if certificate is None:
        raise CertificateFlowError(
            "Only a next or old certificate can be deleted.", code="not_deletable"
        )
    certificate.delete()
    _record(authentication, certificate, actor=actor, what="deleted")


def _record(authentication, certificate, *, actor, what):
    detail = (
        f"Certificate {certificate.thumbprint_sha1} (valid until "
        f"{formatting.day(certificate.not_after)}) {what}."
    )
    authentication.record(Event.Kind.CERTIFICATE_CHANGED, actor=actor, detail=detail)
    logger.info("%s: %s", authentication, detail)
