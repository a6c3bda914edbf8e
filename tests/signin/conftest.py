"""Fixtures of the sign-in tests: a customer whose tenant is still to be named."""

import pytest

from authentications.connections.models import Authentication
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID


@pytest.fixture
def undecided_customer(make_authentication, fake_microsoft):
    """A service-to-service authentication whose tenant is left empty: its Admin consent URL
    asks "organizations", and whoever consents names the tenant. Its BC URL is Fabrikam's."""
    return make_authentication(
        name="Undecided customer",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        tenant_id="",
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
