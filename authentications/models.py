"""The app's models, handed to Django: each lives in its capability's `models.py`.

Django imports `authentications.models` to find the app's models; nothing in the app imports
from here (an import-linter contract says so). The model names are still served here for one
release, with a DeprecationWarning: import them from `authentications.sdk` (or, inside the
app, from their home).
"""

import warnings

from authentications.api import models as _api
from authentications.certificates import models as _certificates
from authentications.connections import models as _connections
from authentications.endpoints import models as _endpoints
from authentications.webhooks import models as _webhooks

HOMES = {
    "Authentication": _connections,
    "AuthorizationRequest": _connections,
    "Event": _connections,
    "Certificate": _certificates,
    "Endpoint": _endpoints,
    "WriteConfirmation": _endpoints,
    "Subscription": _webhooks,
    "ChangeNotification": _webhooks,
    "ApiKey": _api,
    "ApiCall": _api,
}


def __getattr__(name):
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"authentications.models.{name} is deprecated; import it from authentications.sdk "
        f"(or {HOMES[name].__name__})",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(HOMES[name], name)
