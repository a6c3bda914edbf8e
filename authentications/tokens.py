"""Deprecated: the old home of `get_access_token`, `bc_client` and `TokenError`.

They live in `authentications.connections.tokens` now; the site's code imports them from
`authentications.sdk`. This module only re-exports, with a DeprecationWarning, for one
release.
"""

import warnings

from authentications.connections import tokens as _tokens


def __getattr__(name):
    if name.startswith("_") or not hasattr(_tokens, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"authentications.tokens.{name} is deprecated; import it from authentications.sdk "
        "(or authentications.connections.tokens)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(_tokens, name)
