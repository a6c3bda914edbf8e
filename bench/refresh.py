"""Benchmark: `refresh_tokens --workers 16` on 500 due authentications, and a fresh token.

Against the fake Microsoft (in this process) with latency injected on the token endpoint.
Prints wall time, token and discovery requests, the ratio of wall time to the ideal
N x latency / workers, and the median time and HTTP requests of `get_access_token` on a
fresh token.

    .venv/bin/python bench/refresh.py [--n 500] [--workers 16] [--latency 0.1]

Uses a throw-away SQLite file unless BENCH_DATABASE_URL names a scratch database
(its authentications are deleted first). The fake runs in its own process, so its TLS and
JSON work does not compete with bcconnect for this process's GIL (a real Microsoft does not
either); `--in-process-fake` runs it in a thread instead, for comparison.
"""

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import start_django  # noqa: E402
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID  # noqa: E402
from tests.fakes.microsoft import FakeMicrosoft  # noqa: E402


class RemoteFake:
    """The fake Microsoft in a child process, driven over a pipe."""

    def __init__(self, cert_dir):
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=_serve_fake, args=(child_end, cert_dir))
        self._process.start()
        self.url, ca_path = self._pipe.recv()
        self.ca_path = Path(ca_path)
        self.entra = self  # Same shape as FakeMicrosoft for the few calls made here.

    def _ask(self, command, argument=None):
        self._pipe.send((command, argument))
        return self._pipe.recv()

    sign_in = FakeMicrosoft.sign_in  # Plain HTTP against the fake's pages.

    def register_app(self, client_id, secret, redirect_uri):
        self._ask("register", redirect_uri)

    def set_latency(self, seconds):
        self._ask("latency", seconds)

    def reset_counters(self):
        self._ask("reset")

    def counters(self):
        return self._ask("counters")

    def stop(self):
        self._ask("stop")
        self._process.join(10)


class LocalFake:
    """The fake Microsoft in a thread of this process, with RemoteFake's interface."""

    def __init__(self, cert_dir):
        self.fake = FakeMicrosoft(cert_dir=cert_dir).start()
        self.url, self.ca_path, self.entra = self.fake.url, self.fake.ca_path, self.fake.entra

    def sign_in(self, authorize_url):
        return self.fake.sign_in(authorize_url)

    def set_latency(self, seconds):
        self.fake.entra.token_latency = seconds

    def reset_counters(self):
        _reset(self.fake)

    def counters(self):
        return _counters(self.fake)

    def stop(self):
        self.fake.stop()


def _reset(fake):
    fake.entra.token_requests.clear()
    fake.entra.discovery_requests = 0


def _counters(fake):
    return {
        "token_requests": len(fake.entra.token_requests),
        "refresh_grants": fake.entra.count("refresh_token"),
        "discovery_requests": fake.entra.discovery_requests,
        "connections_opened": fake.connections_opened,
    }


def _serve_fake(pipe, cert_dir):
    fake = FakeMicrosoft(cert_dir=cert_dir).start()
    pipe.send((fake.url, str(fake.ca_path)))
    while True:
        command, argument = pipe.recv()
        result = None
        if command == "register":
            fake.entra.register_app(CLIENT_ID, CLIENT_SECRET, argument)
        elif command == "latency":
            fake.entra.token_latency = argument
        elif command == "reset":
            _reset(fake)
        elif command == "counters":
            result = _counters(fake)
        elif command == "stop":
            fake.stop()
            pipe.send(None)
            return
        pipe.send(result)


def configure(fake, workdir):
    """Point bcconnect at the fake and a scratch database, then start Django."""
    start_django(
        workdir,
        BC_AUTHORITY_HOST=fake.url,
        BC_API_HOST=fake.url,
        REQUESTS_CA_BUNDLE=str(fake.ca_path),
    )


def connect_all(fake, count, *, threads=16):
    """Create `count` authentications, each signed in through the fake's pages."""
    from authentications.connections import oauth
    from authentications.connections.models import Authentication
    from authentications.signin import flows

    fake.entra.register_app(CLIENT_ID, CLIENT_SECRET, oauth.redirect_uri())
    Authentication.objects.filter(name__startswith="bench-").delete()
    rows = [
        Authentication.objects.create(
            name=f"bench-{n:04d}",
            client_id=CLIENT_ID,
            tenant_id=TENANT_ID,
            client_secret=CLIENT_SECRET,
            base_url=f"{fake.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
        )
        for n in range(count)
    ]
    pending = list(rows)
    lock = threading.Lock()

    def work():
        from django.db import connection

        try:
            while True:
                with lock:
                    if not pending:
                        return
                    row = pending.pop()
                start = flows.start_sign_in(row, via=flows.AuthorizationRequest.Via.ADMIN)
                _, fields = fake.sign_in(start.authorize_url)
                flows.complete_sign_in(fields, {start.cookie_name: start.cookie_value})
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return rows


def make_due(rows):
    from django.utils import timezone

    from authentications.connections.models import Authentication

    Authentication.objects.filter(pk__in=[row.pk for row in rows]).update(
        access_token_expires_at=timezone.now() + timedelta(minutes=5)
    )


def bench_refresh(fake, rows, *, workers, latency):
    from django.core.management import call_command

    from authentications.connections import oauth

    oauth.clear_http_cache()  # Count the discovery a fresh cron process makes.
    fake.reset_counters()
    connections_before = fake.counters()["connections_opened"]
    fake.set_latency(latency)
    out = StringIO()
    started = time.perf_counter()
    call_command("refresh_tokens", "--workers", str(workers), stdout=out)
    wall = time.perf_counter() - started
    fake.set_latency(0.0)
    counters = fake.counters()
    ideal = len(rows) * latency / workers
    return {
        **counters,
        "summary": out.getvalue().strip().splitlines()[-1],
        "wall": wall,
        "connections_opened": counters["connections_opened"] - connections_before,
        "ideal": ideal,
        "ratio": wall / ideal if ideal else float("nan"),
    }


def bench_fresh_token(fake, row, *, calls):
    from authentications.connections.tokens import get_access_token

    get_access_token(row)  # Warm up: imports, the connection, the Fernet key derivation.
    before = fake.counters()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        get_access_token(row)
        timings.append(time.perf_counter() - started)
    after = fake.counters()
    requests = sum(after[k] - before[k] for k in ("token_requests", "discovery_requests"))
    return {
        "median_ms": statistics.median(timings) * 1000,
        "p95_ms": statistics.quantiles(timings, n=20)[-1] * 1000,
        "http_requests": requests,
        "connections_opened": after["connections_opened"] - before["connections_opened"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per token request")
    parser.add_argument("--calls", type=int, default=2000, help="fresh-token calls to time")
    parser.add_argument("--in-process-fake", action="store_true", help="fake in a thread")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    fake = (LocalFake if args.in_process_fake else RemoteFake)(workdir / "certs")
    try:
        configure(fake, workdir)
        from django.db import connection

        where = "a thread of this process" if args.in_process_fake else "its own process"
        print(f"database: {connection.vendor}; fake Microsoft in {where}", flush=True)
        started = time.perf_counter()
        rows = connect_all(fake, args.n)
        print(f"setup: {args.n} sign-ins in {time.perf_counter() - started:.1f} s", flush=True)
        make_due(rows)
        result = bench_refresh(fake, rows, workers=args.workers, latency=args.latency)
        fresh = bench_fresh_token(fake, rows[0], calls=args.calls)
    finally:
        fake.stop()

    print(
        f"refresh_tokens --workers {args.workers}: N={args.n}, "
        f"token latency {args.latency * 1000:.0f} ms"
    )
    print(f"  command summary:     {result['summary']}")
    print(f"  wall time:           {result['wall']:.2f} s")
    print(
        f"  token requests:      {result['token_requests']} "
        f"(refresh_token grants: {result['refresh_grants']}; target exactly {args.n})"
    )
    print(f"  discovery requests:  {result['discovery_requests']} (target <= 1 per tenant)")
    print(f"  TCP connections:     {result['connections_opened']}")
    print(
        f"  ideal N x latency / workers: {result['ideal']:.2f} s; "
        f"ratio {result['ratio']:.2f} (target <= 1.3)"
    )
    print(f"get_access_token on a fresh token ({args.calls} calls):")
    print(f"  median:              {fresh['median_ms']:.3f} ms (target <= 1 ms on SQLite)")
    print(f"  p95:                 {fresh['p95_ms']:.3f} ms")
    print(
        f"  HTTP requests:       {fresh['http_requests']} "
        f"(connections opened: {fresh['connections_opened']}; target 0)"
    )


if __name__ == "__main__":
    main()
