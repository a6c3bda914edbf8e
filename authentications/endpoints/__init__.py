"""Endpoints: named, saved calls to Business Central (model, form, runs, exports, moves).

Until the package move this name was a module holding the model; the names it served still
import from here for one release, with a DeprecationWarning: the site's code imports them from
`authentications.sdk`. Submodules (`authentications.endpoints.models`, ...) import as usual.
"""

import warnings

PUBLIC = {
    "Endpoint",
    "EndpointNotReady",
    "WriteConfirmation",
    "credential_param",
    "COMPANY_ID",
    "COMPANY_NAME",
    "READ_ONLY_INTENT",
}


def __getattr__(name):
    if name not in PUBLIC:  # Also how `from authentications.endpoints import models` works.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from authentications.endpoints import models

    warnings.warn(
        f"authentications.endpoints.{name} is deprecated; import it from authentications.sdk "
        "(or authentications.endpoints.models)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(models, name)
