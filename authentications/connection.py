"""Renamed `diagnostics` (issue 11): this name shadowed `django.db.connection`.

Kept only so that the admin, being reorganised in parallel, still imports; remove it once
the admin imports `diagnostics`.
"""

from .diagnostics import (
    check_connection,
    choose_environment,
    describe_error,
    discover_environments,
)

__all__ = ["check_connection", "choose_environment", "describe_error", "discover_environments"]
