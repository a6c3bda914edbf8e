"""WSGI entry point (gunicorn bcconnect.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcconnect.settings")
application = get_wsgi_application()
