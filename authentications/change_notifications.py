"""Deprecated: the old home of the change-notification registry (`on`, `Change`, ...).

The registry lives in `authentications.webhooks.handlers` now; the site's code imports it as
`from authentications.sdk import change_notifications`. This module only re-exports, with a
DeprecationWarning, for one release.
"""

import warnings

from authentications.webhooks import handlers as _handlers

PUBLIC = {"on", "disconnect", "handlers_for", "Change"}


def __getattr__(name):
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"authentications.change_notifications.{name} is deprecated; use "
        "`from authentications.sdk import change_notifications` (the same registry)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(_handlers, name)
