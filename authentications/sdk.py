"""The public Python API of bcconnect: the one place the site's own code imports from.

Import it after Django is set up (it loads models). Everything else in the app is internal
and may move between releases; these names will not. `bcconnect.client` and
`bcconnect.errors` stay public as they are (a plain library, usable without Django).

    from authentications.sdk import Authentication, TokenError, bc_client, get_access_token
"""

from authentications.connections.models import Authentication
from authentications.connections.tokens import TokenError, bc_client, get_access_token
from authentications.endpoints.models import Endpoint, EndpointNotReady
from authentications.webhooks import handlers as change_notifications
from authentications.webhooks.handlers import Change

__all__ = [
    "Authentication",
    "Change",
    "Endpoint",
    "EndpointNotReady",
    "TokenError",
    "bc_client",
    "change_notifications",
    "get_access_token",
]
