"""Benchmark: /health/ready under gunicorn as deployed, the answer a load balancer waits for.

The issue's goal is 50 ms or less when healthy; machines are noisy, so this measures it
instead of a test asserting it. Serves the site with gunicorn (DEBUG off) on a scratch
database, warms every worker, then asks /health/ready N times from C threads and prints
p50/p90/p99/max. Also /health/live, which touches nothing, as the floor of the same server.

    .venv/bin/python bench/health.py [--n 2000] [--clients 4]

BENCH_DATABASE_URL names a scratch database instead of the throw-away SQLite file.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from notifications import configure, free_port, percentile, serve


def timings(url, *, total, clients):
    """GET `url` `total` times from `clients` threads; returns each answer's seconds."""
    left, lock, seconds = [total], threading.Lock(), []

    def client():
        session = requests.Session()
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            started = time.perf_counter()
            status = session.get(url, timeout=10).status_code
            elapsed = time.perf_counter() - started
            if status != 200:
                raise SystemExit(f"{url} answered {status}")
            with lock:
                seconds.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds


def report(name, seconds):
    print(
        f"{name}: p50 {statistics.median(seconds) * 1000:.1f} ms, "
        f"p90 {percentile(seconds, 0.90) * 1000:.1f} ms, "
        f"p99 {percentile(seconds, 0.99) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms "
        f"({len(seconds)} requests)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        configure(Path(workdir))
        from django.db import connection

        server, notifications_url = serve(free_port(), workers=None, threads=None)
        base = notifications_url.removesuffix("/authentications/notifications/")
        try:
            timings(f"{base}/health/ready", total=200, clients=args.clients)  # Warm up.
            ready = timings(f"{base}/health/ready", total=args.n, clients=args.clients)
            live = timings(f"{base}/health/live", total=args.n, clients=args.clients)
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"database: {connection.vendor}; gunicorn as deployed; {args.clients} clients")
        report("/health/ready", ready)
        report("/health/live", live)


if __name__ == "__main__":
    main()
