"""The Django admin of bcconnect: one module per model, its object views in `views`.

Importing a model's module registers its ModelAdmin, so each is imported here.
"""

from . import authentication, endpoint, subscription

__all__ = ["authentication", "endpoint", "subscription"]
