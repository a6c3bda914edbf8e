"""The Django admin of bcconnect: one module per capability, its object views beside it.

Importing a model's module registers its ModelAdmin, so each is imported here. The site is
branded here too, and its navigation sidebar is off: on a 1366-px laptop it took 300 px
from every list, whose columns then scrolled out of sight (the breadcrumbs lead back).
"""

from django.contrib import admin

from authentications.admin import api_keys, connections, endpoints, tasks, webhooks
from authentications.kit.formatting import EMPTY

admin.site.site_header = "bcconnect: Business Central connections"
admin.site.site_title = "bcconnect"
admin.site.index_title = "Business Central connections"
admin.site.enable_nav_sidebar = False
admin.site.empty_value_display = EMPTY  # The one dash of every empty value, ours included.

__all__ = ["api_keys", "connections", "endpoints", "tasks", "webhooks"]
