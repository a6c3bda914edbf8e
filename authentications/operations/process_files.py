"""The metric files of processes that are gone, folded into one file per kind.

In multiprocess mode each process (gunicorn worker, db_worker, every cron run) writes its
counts to `<kind>_<pid>.db` in PROMETHEUS_MULTIPROC_DIR, and a scrape adds up every file.
A process that ends leaves its file behind (its counts must still count), so a cron run
every five minutes would add a file each time and every scrape would read them all. Here
the counts of processes that no longer run are added into `<kind>_archive.db` and their
files removed, under a lock that scrapes share, so no scrape sees a count twice or not at
all. Plain Python on purpose: gunicorn's master calls it when a worker exits.
"""

import contextlib
import fcntl
import os
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

FOLDED_KINDS = ("counter", "histogram")  # Kinds whose values add up across processes.
ARCHIVE = "archive"


@contextlib.contextmanager
def locked(path, *, exclusive):
    """Hold the directory's lock: shared to read the files, exclusive to fold them."""
    with open(Path(path) / ".fold.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fold_dead_processes(path):
    """Fold the files of processes that have ended; returns how many were folded."""
    folded = 0
    with locked(path, exclusive=True):
        for kind in FOLDED_KINDS:
            dead = [f for f in Path(path).glob(f"{kind}_*.db") if not _running(f)]
            if dead:
                _add_into_archive(Path(path) / f"{kind}_{ARCHIVE}.db", dead)
                folded += len(dead)
    return folded


def _add_into_archive(archive_path, files):
    archive = MmapedDict(str(archive_path))
    try:
        for file in files:
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(file)):
                total, _ = archive.read_value(key)
                archive.write_value(key, total + value, timestamp)
            file.unlink()
    finally:
        archive.close()


def _running(file):
    """Whether the process that writes `file` still runs (on this host and PID namespace)."""
    pid = file.stem.rsplit("_", 1)[-1]
    if not pid.isdigit():
        return True  # The archive, or a file named by something other than a pid: keep it.
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Another user's process: running.
    return True
