"""The Authorization URL: the signed link a BC user opens to grant access without the
admin, its email, and the landing page it shows."""
