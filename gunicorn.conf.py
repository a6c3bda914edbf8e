"""gunicorn settings, read from the working directory: `gunicorn` alone serves bcconnect.

Override on the command line (`--bind`, `--workers`) or with GUNICORN_CMD_ARGS.
"""

import os

wsgi_app = "bcconnect.wsgi"
bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Load Django once in the master: a missing setting then stops start-up with its one line,
# instead of every worker failing to boot and being restarted forever.
preload_app = True
# No access log by default: request paths can carry Authorization URL tokens.
