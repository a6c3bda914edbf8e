"""What an API key may do: a few named scopes, each checked before anything is sent.

Narrow on purpose: a storefront that only reads customers gets `bc.read` and no more, so a
leaked key cannot change data or hand out a token that could.
"""

from django.db import models


class Scope(models.TextChoices):
    TOKENS = "tokens", "tokens: hand out access tokens"
    BC_READ = "bc.read", "bc.read: proxied GET"
    BC_WRITE = "bc.write", "bc.write: proxied POST, PATCH, PUT, DELETE and $batch"
    ENDPOINTS = "endpoints", "endpoints: list, run and export saved endpoints"


ALL = frozenset(Scope.values)
READ_METHODS = frozenset({"GET", "HEAD"})


def for_method(method: str) -> str:
    """The scope a proxied request needs: reading is `bc.read`, anything else `bc.write`."""
    return Scope.BC_READ if method.upper() in READ_METHODS else Scope.BC_WRITE


def parse(text: str) -> list[str]:
    """`tokens,bc.read` as a list of scopes; ValueError naming the unknown ones."""
    given = [part.strip() for part in str(text).split(",") if part.strip()]
    unknown = [scope for scope in given if scope not in ALL]
    if unknown:
        raise ValueError(
            f"Unknown scope {', '.join(unknown)}; use {', '.join(sorted(ALL))}, comma-separated."
        )
    if not given:
        raise ValueError(f"Give at least one scope: {', '.join(sorted(ALL))}.")
    return sorted(set(given), key=Scope.values.index)
