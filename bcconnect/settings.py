"""Settings for bcconnect, read from the environment (and an optional .env file).

With DEBUG on every setting has a working default so `make run` needs nothing; with DEBUG
off the secrets must be given, and start-up stops with one readable line when they are not.
"""

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ

from bcconnect import caches

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # Variables already set in the environment win.

DEBUG = env.bool("DEBUG", default=False)


def _required(name, debug_default):
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return debug_default
    raise SystemExit(f"bcconnect: {name} is not set; it is required when DEBUG is off.")


SECRET_KEY = _required("SECRET_KEY", "django-insecure-development-only-key")
# First key encrypts, every key decrypts: prepend a new key to rotate (see README).
FERNET_KEYS = _required("FERNET_KEYS", "development-only-fernet-key").split(",")
FERNET_KEYS = [key.strip() for key in FERNET_KEYS if key.strip()]

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
_public_host = urlsplit(PUBLIC_BASE_URL).hostname or "localhost"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[_public_host, "localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "authentications",
    "django_tasks",
    "django_tasks_db",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "authentications.operations.middleware.RequestIdMiddleware",
    "authentications.operations.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bcconnect.urls"
WSGI_APPLICATION = "bcconnect.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE transactions take the write lock
    # up front so two writers queue on the busy timeout instead of failing to upgrade a lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Each worker thread keeps its connection for a minute instead of opening one (a forked
    # server process) per request; checked before reuse, so a restarted server costs one
    # error-free reconnect. `?conn_max_age=0` in DATABASE_URL turns it off.
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Email: console in development, SMTP (or anything django-environ knows) via EMAIL_URL.
_email = env.email_url("EMAIL_URL", default="consolemail://")
_email_options = _email.pop("OPTIONS", {})
vars().update(_email)
# Seconds each step of an SMTP conversation may take (EMAIL_URL may end in ?timeout=N), and
# the longest a grant, refresh or cron run waits for a notification to be accepted.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=float(_email_options.get("TIMEOUT", 10)))
if EMAIL_TIMEOUT <= 0:
    raise SystemExit("bcconnect: EMAIL_TIMEOUT must be a positive number of seconds.")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="bcconnect@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ADMINS = [
    (name.strip(), address.strip(" >"))
    for name, _, address in (entry.partition("<") for entry in env.list("ADMINS", default=[]))
]
SITE_NAME = env.str("SITE_NAME", default="bcconnect")

# Session cookie stays Lax: Microsoft's form_post is cross-site, and the admin page it
# redirects to must still see the staff user's session (Strict would hide it).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- HTTPS in production ------------------------------------------------------------------
# Behind a TLS-terminating proxy Django sees plain HTTP; SECURE_PROXY_SSL_HEADER=true trusts
# the proxy's X-Forwarded-Proto (only set it when the proxy overwrites that header).
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
_served_over_https = not DEBUG and PUBLIC_BASE_URL.startswith("https://")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_served_over_https)
# Probes and Prometheus often ask the host directly over plain HTTP: answer them there.
SECURE_REDIRECT_EXEMPT = [r"^health/(live|ready)$", r"^metrics$"]
# HSTS covers this host and its own subdomains only; "preload" alone submits nothing.
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=31_536_000 if _served_over_https else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Secure cookies are accepted by browsers on http://localhost and 127.0.0.1 as well.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_HTTPONLY = not DEBUG  # The admin reads the token from the form, never the cookie.

# --- Business Central and Microsoft Entra ------------------------------------------------
BC_AUTHORITY_HOST = env.str("BC_AUTHORITY_HOST", default="https://login.microsoftonline.com")
BC_AUTHORITY_HOST = BC_AUTHORITY_HOST.rstrip("/")
BC_API_HOST = env.str("BC_API_HOST", default="https://api.businesscentral.dynamics.com")
BC_API_HOST = BC_API_HOST.rstrip("/")
# Extra hosts a base URL may point at (bearer tokens are sent to no other host).
BC_API_ALLOWED_HOSTS = env.list("BC_API_ALLOWED_HOSTS", default=[])
# (connect, read) seconds for every call to Microsoft.
BC_HTTP_TIMEOUT = tuple(env.list("BC_HTTP_TIMEOUT", cast=float, default=[5.0, 30.0]))
BC_SIGN_IN_TTL_MINUTES = env.int("BC_SIGN_IN_TTL_MINUTES", default=10)
BC_TOKEN_SKEW_SECONDS = env.int("BC_TOKEN_SKEW_SECONDS", default=300)
# How long one token refresh holds its lease. 0 (the default) derives it from BC_HTTP_TIMEOUT:
# longer than the worst case of the HTTP calls of one refresh (115 s with the default
# timeouts). A longer value is used as is; a shorter one is ignored (`manage.py check` warns).
BC_LEASE_SECONDS = env.int("BC_LEASE_SECONDS", default=0)
BC_LINK_MAX_AGE_DAYS = env.int("BC_LINK_MAX_AGE_DAYS", default=7)
# Audit events older than this are deleted by refresh_tokens (0 keeps them forever); the
# current connection's grant and its credential and link events always stay.
BC_EVENT_RETENTION_DAYS = env.int("BC_EVENT_RETENTION_DAYS", default=180)
BC_NOTIFY_EMAILS = env.list("BC_NOTIFY_EMAILS", default=[address for _, address in ADMINS])
BC_CLIENT_MAX_CONCURRENCY = env.int("BC_CLIENT_MAX_CONCURRENCY", default=5)
# How long a certificate made by "Generate certificate" is valid.
BC_CERTIFICATE_VALID_MONTHS = env.int("BC_CERTIFICATE_VALID_MONTHS", default=12)
# The most key-derivation iterations an uploaded .pfx may ask for (its MAC and each encrypted
# part), checked before any is run. Windows exports 2000, OpenSSL 2048, Java 10000: 100,000
# leaves room for stricter tools and bounds an upload to a fraction of a second of CPU.
BC_PFX_MAX_ITERATIONS = env.int("BC_PFX_MAX_ITERATIONS", default=100_000)

# Public pages (Authorization URL landing, callback): requests per client IP.
BC_PUBLIC_RATE_LIMIT = env.str("BC_PUBLIC_RATE_LIMIT", default="30/minute")
# Behind a proxy, the META key of the header it sets with the client's address
# (e.g. HTTP_X_FORWARDED_FOR); empty means REMOTE_ADDR.
BC_CLIENT_IP_HEADER = env.str("BC_CLIENT_IP_HEADER", default="")
# Rate limits (the public pages', the API keys') must count across processes and hosts: the
# database's cache by default (`manage.py createcachetable` after migrate), or Redis through
# CACHE_URL (e.g. redis://127.0.0.1:6379/0).
# Either way with an atomic increment that keeps its expiry, and Redis with timeouts
# (bcconnect/caches.py).
CACHES = {"default": caches.config(env.str("CACHE_URL", default=caches.DEFAULT_URL))}

# --- The HTTP API for other services (authentications/api, docs/api.md) ------------------
# Requests per API key, unless the key has its own rate (admin); counted in the default cache.
BC_API_RATE_LIMIT = env.str("BC_API_RATE_LIMIT", default="1200/minute")
# The longest the proxy holds a caller: a Retry-After from BC longer than what is left of it
# is passed back at once instead of waited out.
BC_API_MAX_WAIT_SECONDS = env.float("BC_API_MAX_WAIT_SECONDS", default=30.0)
REST_FRAMEWORK = {
    # Keys only: no session, so no CSRF, and no browsable API (the admin is for people).
    "DEFAULT_AUTHENTICATION_CLASSES": ["authentications.api.permissions.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["authentications.api.permissions.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["authentications.api.throttles.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "authentications.api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "bcconnect API",
    "DESCRIPTION": "Business Central connections for other services: tokens on demand, a "
    "pinned BC proxy and saved endpoints. Send `Authorization: Api-Key <key>`.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are public (no key): they describe, they hold no data.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Change notifications (BC webhooks) --------------------------------------------------
# Handlers run as tasks (Django's Tasks framework, the django-tasks backport). The default
# keeps them in this database, run by `manage.py db_worker`; TASKS_BACKEND names another
# backend class: django_tasks_rq.RQBackend runs them on RQ workers over Redis (REDIS_URL),
# started with `manage.py rqworker --job-class django_tasks_rq.Job --with-scheduler`. The inbox
# rows stay the source of truth on either engine: cron queues again what a queue lost.
TASKS_BACKEND = env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")
TASKS = {"default": {"BACKEND": TASKS_BACKEND}}
REDIS_URL = env.str("REDIS_URL", default="")
if TASKS_BACKEND == "django_tasks_rq.RQBackend":
    if not REDIS_URL:
        raise SystemExit("bcconnect: REDIS_URL is not set; the RQ task backend needs it.")
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    # Connecting and each command wait 10 s at most (an RQ worker raises it for its blocking
    # wait). In the URL: django-rq ignores REDIS_CLIENT_KWARGS beside a URL, while redis-py
    # reads these from the URL's query; REDIS_URL's own values win.
    _redis = urlsplit(REDIS_URL)
    _redis_query = {**caches.REDIS_TIMEOUTS, **dict(parse_qsl(_redis.query))}
    RQ_QUEUES = {
        "default": {
            "URL": urlunsplit(_redis._replace(query=urlencode(_redis_query))),
            "DEFAULT_TIMEOUT": env.int("RQ_JOB_TIMEOUT", default=900),
            # One Redis client per process instead of one per task queued.
            "QUEUE_CLASS": "authentications.kit.rq_connections.PooledQueue",
        }
    }
# Requests per client IP on the notification endpoint; BC retries a 429 later.
BC_NOTIFICATION_RATE_LIMIT = env.str("BC_NOTIFICATION_RATE_LIMIT", default="6000/minute")
# Largest notification body read. BC batches changes, and deactivates a subscription whose
# URL answers a 4xx: a body over this is answered 503 (BC retries) and counted in the admin.
# Read in chunks with memory bounded, so the default is generous (32 MiB).
BC_NOTIFICATION_MAX_BYTES = env.int("BC_NOTIFICATION_MAX_BYTES", default=32 * 1024 * 1024)
# Modules imported before delivering, so their @change_notifications.on(...) handlers exist
# in the worker (handlers registered from an AppConfig.ready() need no entry here).
BC_NOTIFICATION_HANDLERS = env.list("BC_NOTIFICATION_HANDLERS", default=[])
BC_NOTIFICATION_MAX_ATTEMPTS = env.int("BC_NOTIFICATION_MAX_ATTEMPTS", default=8)
BC_NOTIFICATION_RETRY_SECONDS = env.float("BC_NOTIFICATION_RETRY_SECONDS", default=30.0)
# A delivery's claim: a handler running longer may run twice (at least once), and a killed
# worker's notification is delivered again this long after it was claimed (cron queues it).
BC_NOTIFICATION_CLAIM_SECONDS = env.float("BC_NOTIFICATION_CLAIM_SECONDS", default=300.0)
BC_SUBSCRIPTION_RENEW_HOURS = env.int("BC_SUBSCRIPTION_RENEW_HOURS", default=24)

# --- Operations: metrics and health --------------------------------------------------------
# /metrics answers 404 while METRICS_TOKEN is unset; set, only `Authorization: Bearer <it>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Optional: only these client addresses (as BC_CLIENT_IP_HEADER finds them) may scrape.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
# Multiprocess metrics (gunicorn sets it; share it with db_worker and cron on one host).
# prometheus-client reads it from the environment itself and fails on a missing directory.
_metrics_dir = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if _metrics_dir and not Path(_metrics_dir).is_dir():
    raise SystemExit(f"bcconnect: PROMETHEUS_MULTIPROC_DIR={_metrics_dir} is not a directory.")

# Error reports never carry OAuth codes, states or tokens (GET, POST or frame variables).
DEFAULT_EXCEPTION_REPORTER = "authentications.kit.reporting.SecretScrubbingReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "authentications.kit.reporting.SecretScrubbingFilter"

# Logs: "text" (the default) or "json", one object a line with the request id that follows
# a request into the tasks it queues. LOG_REQUEST_ID_HEADER: the META key of a header a
# trusted proxy sets with its own id (e.g. HTTP_X_REQUEST_ID); empty makes a new id.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise SystemExit("bcconnect: LOG_FORMAT must be text or json.")
LOG_REQUEST_ID_HEADER = env.str("LOG_REQUEST_ID_HEADER", default="")
_json = LOG_FORMAT == "json"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "authentications.kit.request_context.RequestIdFilter"},
        # Request logs name the path (an Authorization URL holds its link token there) or
        # the request line (a callback's code), and carry the request with its cookies.
        "redact_request": {"()": "authentications.kit.reporting.RedactRequestSecrets"},
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            **({"formatter": "json"} if _json else {}),
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if _json else "django.server",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # MSAL logs authorization codes and PKCE verifiers at DEBUG: never lower this.
        "msal": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["redact_request"]},
        "django.security.csrf": {"filters": ["redact_request"]},
        # Django's own runserver logging, plus the filter.
        "django.server": {
            "handlers": ["django.server"],
            "filters": ["redact_request"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
