"""Benchmark: one large notification batch, posted to the real endpoint in a real server.

BC may batch many changes into one POST, and a 4xx for a large one deactivates the
subscription. For each size, this serves the site with gunicorn (one worker process, one
thread, DEBUG off; a fresh server per size), posts one well-formed batch of distinct
changes over 10 subscriptions, and prints the answer, its time, how many rows were stored,
and the web worker's resident memory: before the POST and its high-water mark during it
(VmHWM, reset before the POST through /proc/<pid>/clear_refs). Last, a body over
BC_NOTIFICATION_MAX_BYTES, to show its answer (503 with Retry-After, never a 4xx).

    .venv/bin/python bench/large_batch.py [--sizes-mib 1 10 30] [--oversize-mib 40]

Uses a throw-away SQLite file unless BENCH_DATABASE_URL names a scratch database (its
change notifications and subscriptions are deleted first). Linux only (/proc).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from notifications import ROOT, configure, create_subscriptions, free_port, serving

MIB = 1024 * 1024


def batch(subscriptions, size):
    """A body of BC's shape, at least `size` bytes: distinct changes, round-robin."""
    items, length, number = [], 12, 0
    while length < size:
        row, client_state = subscriptions[number % len(subscriptions)]
        item = {
            "subscriptionId": row.subscription_id,
            "clientState": client_state,
            "expirationDateTime": "2030-01-01T00:00:00Z",
            "resource": f"api/v2.0/companies({row.company_id})/items(item-{number:08d})",
            "changeType": "updated",
            "lastModifiedDateTime": "2026-11-30T10:00:00.000Z",
        }
        items.append(item)
        length += len(json.dumps(item)) + 2
        number += 1
    return json.dumps({"value": items}).encode(), len(items)


def serve(port):
    """gunicorn with one worker process and one thread: its memory is the request's."""
    env = {**os.environ, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "WEB_THREADS": "1"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return server, serving(server, f"http://127.0.0.1:{port}/authentications/notifications/")


def worker_pid(server):
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    if len(children) != 1:
        raise SystemExit(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def memory(pid):
    """(VmRSS, VmHWM) of `pid` in bytes."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM"))


def reset_peak(pid):
    """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def post_once(subscriptions, size):
    """Serve, warm up, post one batch of `size` bytes; returns the figures."""
    from django_tasks_db.models import DBTaskResult

    from authentications.webhooks.models import ChangeNotification

    body, count = batch(subscriptions, size)
    server, url = serve(free_port())
    try:
        pid = worker_pid(server)
        small, _ = batch(subscriptions, 1)
        warm = small.replace(b"items(item-", b"items(warm-")
        requests.post(url, data=warm, headers={"Content-Type": "application/json"}, timeout=30)
        ChangeNotification.objects.all().delete()
        DBTaskResult.objects.all().delete()
        reset_peak(pid)
        before, _ = memory(pid)
        started = time.perf_counter()
        answer = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=300
        )
        elapsed = time.perf_counter() - started
        _, peak = memory(pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = ChangeNotification.objects.count()
    ChangeNotification.objects.all().delete()
    DBTaskResult.objects.all().delete()
    return answer, elapsed, len(body), count, stored, before, peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument("--oversize-mib", type=float, default=40)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        configure(Path(workdir))
        from django.conf import settings
        from django.db import connection

        subscriptions = create_subscriptions()
        limit = settings.BC_NOTIFICATION_MAX_BYTES
        print(
            f"database: {connection.vendor}; gunicorn 1 worker x 1 thread; "
            f"BC_NOTIFICATION_MAX_BYTES {limit:,} ({limit / MIB:.0f} MiB)"
        )
        for size in args.sizes_mib:
            answer, elapsed, length, count, stored, before, peak = post_once(
                subscriptions, int(size * MIB)
            )
            print(
                f"{length / MIB:6.1f} MiB, {count:,} items: answered {answer.status_code} in "
                f"{elapsed:.2f} s; {stored:,} stored; web worker RSS {before / MIB:.0f} MiB "
                f"before, peak {peak / MIB:.0f} MiB (+{(peak - before) / MIB:.0f} MiB)"
            )
        answer, elapsed, length, count, stored, before, peak = post_once(
            subscriptions, int(args.oversize_mib * MIB)
        )
        print(
            f"{length / MIB:6.1f} MiB (over the limit): answered {answer.status_code} "
            f"(Retry-After {answer.headers.get('Retry-After')}) in {elapsed:.2f} s; "
            f"{stored} stored; peak RSS {peak / MIB:.0f} MiB (+{(peak - before) / MIB:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
