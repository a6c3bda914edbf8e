"""Benchmark: the notification endpoint under a burst, then the worker's delivery rate.

Serves the site with gunicorn (DEBUG off, no rate limit) on a scratch database, then 8
concurrent senders POST 10,000 notifications in batches of 100, as BC does, spread over 10
subscriptions. Prints notifications accepted per second, the p50/p90/p99/max answer times, and
how many were lost (answered 202 but not stored, or not answered 202). Then runs the real
worker (`manage.py db_worker --batch`, or `rqworker --burst` when TASKS_BACKEND names RQ with
REDIS_URL) against a no-op handler and prints its delivery rate.

    .venv/bin/python bench/notifications.py [--n 10000] [--batch 100] [--senders 8]
        [--web-workers N] [--threads N]   (default: as gunicorn.conf.py deploys)

Uses a throw-away SQLite file unless BENCH_DATABASE_URL names a scratch database (its
change notifications and subscriptions are deleted first), e.g.
BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_notifications
"""

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import start_django  # noqa: E402
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID  # noqa: E402

SUBSCRIPTIONS = 10
WARM_UP_POSTS = 64  # Every worker thread has connected and imported what it needs.


def configure(workdir):
    start_django(
        workdir,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS="bench-" + secrets.token_urlsafe(32),
        BC_NOTIFICATION_RATE_LIMIT="",
        BC_NOTIFICATION_HANDLERS="tests.webhooks.notification_handlers",
        NOTIFICATION_LOG=str(workdir / "delivered.log"),
    )


def create_subscriptions():
    """Active subscriptions to `items` (the no-op handler); returns (id, clientState) pairs."""
    from django_tasks_db.models import DBTaskResult

    from authentications.connections.models import Authentication
    from authentications.webhooks.models import ChangeNotification, Subscription

    ChangeNotification.objects.all().delete()
    Subscription.objects.all().delete()
    DBTaskResult.objects.all().delete()
    authentication, _ = Authentication.objects.get_or_create(
        name="bench-notifications",
        defaults={
            "client_id": CLIENT_ID,
            "tenant_id": TENANT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": f"https://api.businesscentral.dynamics.com/v2.0/{TENANT_ID}/"
            "Production/api/v2.0",
        },
    )
    rows = [
        Subscription.objects.create(
            authentication=authentication,
            company_id=f"00000000-0000-0000-0000-{number:012d}",
            entity="items",
            subscription_id=secrets.token_hex(16),
            status=Subscription.Status.ACTIVE,
        )
        for number in range(SUBSCRIPTIONS)
    ]
    return [(row, str(row.client_state)) for row in rows]


def bodies(subscriptions, *, total, batch):
    """`total` notifications in POST bodies of `batch` items, each item a distinct change."""
    items = []
    for number in range(total):
        row, client_state = subscriptions[number % len(subscriptions)]
        items.append(
            {
                "subscriptionId": row.subscription_id,
                "clientState": client_state,
                "expirationDateTime": "2030-01-01T00:00:00Z",
                "resource": f"api/v2.0/companies({row.company_id})/items(item-{number})",
                "changeType": "updated",
                "lastModifiedDateTime": "2026-11-30T10:00:00.000Z",
            }
        )
    return [json.dumps({"value": items[start : start + batch]}) for start in range(0, total, batch)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port, *, workers, threads):
    """gunicorn as deployed (gunicorn.conf.py picks workers and threads), unless told."""
    env = {**os.environ, "BIND": f"127.0.0.1:{port}"}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["WEB_THREADS"] = str(threads)
    command = [str(Path(sys.executable).parent / "gunicorn")]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return server, serving(server, f"http://127.0.0.1:{port}/authentications/notifications/")


def serving(server, url):
    """`url` once the gunicorn `server` answers it; exits with its stderr if it never does."""
    for _ in range(300):
        try:
            requests.post(url, timeout=1)
            return url
        except requests.ConnectionError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"gunicorn did not start:\n{server.stderr.read().decode()}")


def send_all(url, payloads, *, senders):
    """POST every payload from `senders` threads; returns (wall seconds, answers)."""
    queue = list(enumerate(payloads))
    lock = threading.Lock()
    answers = []

    def sender():
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                _, body = queue.pop()
            started = time.perf_counter()
            try:
                status = session.post(
                    url, data=body, headers={"Content-Type": "application/json"}, timeout=30
                ).status_code
            except requests.RequestException:
                status = None
            elapsed = time.perf_counter() - started
            with lock:
                answers.append((status, elapsed, body.count('"subscriptionId"')))

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, answers


def warm_up(url, subscriptions, *, count):
    """A running site is warm: let every gunicorn thread answer once, then forget it all."""
    from django_tasks_db.models import DBTaskResult

    from authentications.webhooks.models import ChangeNotification

    warm = [
        body.replace("items(item-", "items(warm-")
        for body in bodies(subscriptions, total=count, batch=1)
    ]
    send_all(url, warm, senders=8)
    ChangeNotification.objects.all().delete()
    DBTaskResult.objects.all().delete()
    if on_rq():
        import django_rq

        django_rq.get_queue("default").empty()


def on_rq():
    from django.conf import settings

    return settings.TASKS_BACKEND == "django_tasks_rq.RQBackend"


def worker_command():
    """The task engine's worker, run until its queue is empty."""
    if on_rq():
        return ["rqworker", "--burst", "--job-class", "django_tasks_rq.Job", "--with-scheduler"]
    return ["db_worker", "--batch", "--no-startup-delay"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def deliver(total):
    """Run the real worker until the queue is empty; returns (seconds, delivered)."""
    from authentications.webhooks.models import ChangeNotification

    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", *worker_command()],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"The worker failed:\n{result.stderr}")
    delivered = ChangeNotification.objects.filter(
        status=ChangeNotification.Status.DELIVERED
    ).count()
    return elapsed, delivered


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--web-workers", type=int, help="default: gunicorn.conf.py's")
    parser.add_argument("--threads", type=int, help="default: gunicorn.conf.py's")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        configure(Path(workdir))
        from django.db import connection

        from authentications.webhooks.models import ChangeNotification

        subscriptions = create_subscriptions()
        payloads = bodies(subscriptions, total=args.n, batch=args.batch)
        server, url = serve(free_port(), workers=args.web_workers, threads=args.threads)
        try:
            warm_up(url, subscriptions, count=WARM_UP_POSTS)
            wall, answers = send_all(url, payloads, senders=args.senders)
        finally:
            server.terminate()
            server.wait(timeout=30)
        accepted = sum(count for status, _, count in answers if status == 202)
        stored = ChangeNotification.objects.count()
        times = [elapsed for _, elapsed, _ in answers]
        statuses = sorted({str(status) for status, _, _ in answers})
        print(
            f"database: {connection.vendor}; gunicorn {args.web_workers or 'default'} workers x "
            f"{args.threads or 'default'} threads; {args.senders} senders; "
            f"{len(payloads)} POSTs of {args.batch}"
        )
        print(
            f"answers: {', '.join(statuses)}; {accepted} notifications acknowledged (202), "
            f"{stored} stored; lost: {args.n - stored}"
        )
        print(f"accepted: {accepted / wall:,.0f} notifications/s ({wall:.2f} s in all)")
        print(
            f"answer time: p50 {statistics.median(times) * 1000:.0f} ms, "
            f"p90 {percentile(times, 0.90) * 1000:.0f} ms, "
            f"p99 {percentile(times, 0.99) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
            f"{sum(1 for elapsed in times if elapsed > 0.2)} of {len(times)} POSTs over 200 ms"
        )
        seconds, delivered = deliver(stored)
        print(
            f"worker (1 {worker_command()[0]} process, no-op handler): {delivered} delivered in "
            f"{seconds:.1f} s = {delivered / seconds:,.0f} notifications/s "
            "(includes the worker's start-up)"
        )


if __name__ == "__main__":
    main()
