"""Found by the admin-consent callback fuzz on PostgreSQL: a NUL byte in the answer (in its
state, or in Microsoft's error description, which is stored as the last error) made the
callback a 500, because PostgreSQL text cannot hold NUL. Both are refused cleanly."""

from http.cookies import SimpleCookie

import pytest
from django.test import Client

from authentications.connections.models import Authentication, AuthorizationRequest
from authentications.signin import flows

pytestmark = pytest.mark.django_db

CALLBACK = "/authentications/callback/"


@pytest.mark.parametrize("state", ["\x00", "abc\x00def", "a b", "é"])
def test_a_state_that_no_sign_in_has_is_refused_without_asking_the_database(state, fabrikam):
    response = Client().get(CALLBACK, {"state": state, "admin_consent": "True"})

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("error", "description"),
    [("invalid_request", "AADSTS7000000: x\x00y"), ("invalid\x00request", "")],
    ids=["in-the-description", "in-the-error-code"],
)
def test_a_nul_in_microsofts_error_is_stored_without_it(fabrikam, error, description):
    start = flows.start_admin_consent(fabrikam, via=AuthorizationRequest.Via.LINK)
    browser = Client()
    browser.cookies = SimpleCookie({start.cookie_name: start.cookie_value})

    response = browser.get(
        CALLBACK,
        {
            "state": start.request.state,
            "error": error,
            "error_description": description,
        },
    )

    assert response.status_code == 400
    stored = Authentication.objects.get(pk=fabrikam.pk)
    assert "\x00" not in stored.last_error + stored.last_error_code
