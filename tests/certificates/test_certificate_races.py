"""Two staff at once on one rollover: a double Switch switches once; a switch and delete of
the old certificate while a refresh is at Microsoft lose no token; a second "next" is
refused by the database even when both got past the check."""

import pytest
from django.db import IntegrityError

from authentications.certificates import flows
from authentications.certificates.models import Certificate
from authentications.connections import tokens
from authentications.connections.models import Authentication
from tests.helpers import fresh, key_pair, sibling_acts_during_the_token_request, use_certificate

pytestmark = pytest.mark.django_db(transaction=True)


def ready_to_switch(make_authentication, fake_microsoft):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    first = use_certificate(fake_microsoft, authentication, key_pair())
    upcoming = use_certificate(fake_microsoft, authentication, key_pair(1))
    return authentication, first, upcoming


def once(act):
    """`act` the first time only: a sibling's own token request must not start another."""
    done = []

    def run():
        if not done:
            done.append(True)
            act()

    return run


def test_two_switches_at_once_switch_once(make_authentication, fake_microsoft, monkeypatch):
    authentication, first, upcoming = ready_to_switch(make_authentication, fake_microsoft)
    sibling = once(lambda: flows.switch_to_next(authentication, actor="other staff"))
    sibling_acts_during_the_token_request(fake_microsoft, monkeypatch, sibling)

    with pytest.raises(flows.CertificateFlowError, match="meanwhile"):
        flows.switch_to_next(authentication, actor="staff")

    roles = dict(Certificate.objects.values_list("pk", "role"))
    assert roles == {first.pk: Certificate.Role.OLD, upcoming.pk: Certificate.Role.CURRENT}


def test_switch_and_delete_while_a_refresh_is_at_microsoft_keep_the_token(
    make_authentication, fake_microsoft, monkeypatch
):
    authentication, first, upcoming = ready_to_switch(make_authentication, fake_microsoft)

    def other_staff_rolls_over():
        flows.switch_to_next(authentication, actor="other staff")
        flows.delete(authentication, first.pk, actor="other staff")

    sibling_acts_during_the_token_request(fake_microsoft, monkeypatch, once(other_staff_rolls_over))

    result = tokens.refresh(authentication, needed=lambda row: True, by_person=True)

    row = fresh(authentication)
    assert result.refreshed and row.status == Authentication.Status.CONNECTED
    assert fake_microsoft.entra.token_info(row.access_token)
    assert list(Certificate.objects.values_list("pk", "role")) == [
        (upcoming.pk, Certificate.Role.CURRENT)
    ]
    # The next refresh signs with the certificate now current, which Entra knows.
    assert tokens.refresh(row, needed=lambda r: True, by_person=True).refreshed


def test_the_database_refuses_a_second_next_certificate(make_authentication):
    authentication = make_authentication()
    flows.generate(authentication, actor="staff")
    upcoming = flows.generate(authentication, actor="staff")
    duplicate = {
        field: getattr(upcoming, field)
        for field in ("authentication", "role", "source", "certificate_pem", "not_before")
    }

    with pytest.raises(IntegrityError):
        Certificate.objects.create(
            **duplicate, private_key=upcoming.private_key, not_after=upcoming.not_after
        )
