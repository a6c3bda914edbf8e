"""gunicorn settings, read from the working directory: `gunicorn` alone serves bcconnect.

Override on the command line (`--bind`, `--workers`) or with GUNICORN_CMD_ARGS.
"""

import os

wsgi_app = "bcconnect.wsgi"
bind = os.environ.get("BIND", "127.0.0.1:8000")
# SQLite lets one process write at a time and makes the others poll for its lock, so on
# SQLite one worker process with threads answers a burst (BC's notifications) fastest; on
# PostgreSQL, processes. WEB_CONCURRENCY and WEB_THREADS override either.
_sqlite = os.environ.get("DATABASE_URL", "sqlite:").startswith("sqlite:")
workers = int(os.environ.get("WEB_CONCURRENCY", "1" if _sqlite else "3"))
threads = int(os.environ.get("WEB_THREADS", "8" if _sqlite else "4"))
# Load Django once in the master: a missing setting then stops start-up with its one line,
# instead of every worker failing to boot and being restarted forever.
preload_app = True
# No access log by default: request paths can carry Authorization URL tokens.
