"""gunicorn settings, read from the working directory: `gunicorn` alone serves bcconnect.

Override on the command line (`--bind`, `--workers`) or with GUNICORN_CMD_ARGS.
"""

import atexit
import gc
import os
import shutil
import tempfile

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

# Metrics: each worker writes its counts to files in PROMETHEUS_MULTIPROC_DIR, and /metrics
# adds up every file. Set it (the same directory for gunicorn, db_worker and cron on this
# host, e.g. /run/bcconnect/metrics) to count those processes too; unset, gunicorn makes a
# fresh directory of its own and removes it on exit. Set before the app is loaded:
# prometheus-client chooses multiprocess mode when it is first imported.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bcconnect-metrics-")
_master_pid = os.getpid()


@atexit.register
def _remove_own_metrics_dir():
    """Also when start-up stops (a missing secret), before any hook runs; never in a
    worker, which inherits this from the master."""
    if _own_metrics_dir and os.getpid() == _master_pid:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker):
    """A worker ended (restart, crash): drop its live files, fold its counts into the rest."""
    from prometheus_client import multiprocess

    from authentications.operations import process_files

    multiprocess.mark_process_dead(worker.pid)
    process_files.fold_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def pre_fork(server, worker):
    """Move everything loaded so far (Django, the app, its libraries) out of the garbage
    collector's sight before the worker is forked: a full collection then walks only what the
    worker made since, not every start-up object, and stops all the worker's threads for a
    few milliseconds instead of tens (the Python manual's advice for servers that fork,
    gc.freeze). It also keeps those objects' pages shared with the master. Under bench/api.py's
    load the p99 of every answer fell by a quarter to a third."""
    gc.freeze()


def post_fork(server, worker):
    server.log.info(
        "Worker %s: %s start-up objects kept out of garbage collection",
        worker.pid,
        gc.get_freeze_count(),
    )
