"""Benchmark the HTTP API under gunicorn (2 workers) against the fake Microsoft (prints figures).

    .venv/bin/python bench/api.py [--clients 32] [--requests 3200] [--small-gets 1000]
        [--rows 50000] [--small-rows 5000] [--page-size 20000] [--workers 2] [--threads N]
        [--parts abc]

(a) Token hand-out (a fresh token) p50/p99 with 32 concurrent clients, beside the same
    server's cheapest answer under the same load: a refused key (401), the two alternating
    in 4 rounds. Goal: hand-out p99 within 1.3x of the 401's, and <= 25 ms.
(b) What the proxy adds to one small GET (`customers?$top=1`): p50 and p99 over 1,000
    requests, proxy minus direct (the fake BC asked with the token itself). Goal: p50 <= 10 ms.
(c) 50,000 rows paged through the proxy (following its rewritten next links) against the same
    pages fetched from the fake BC directly: wall-time ratio (goal <= 1.25); and the gunicorn
    workers' peak memory (VmHWM) after 5,000 rows and after 50,000 (goal: flat).

The fake Microsoft runs in its own process (bench/client.py's `Server`); the clients of (a)
run in 4 processes of 8 threads so the load is not one interpreter's. Uses a throw-away
SQLite file unless BENCH_DATABASE_URL names a scratch database (its authentications and API
keys are deleted first), e.g. BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api
"""

import argparse
import http.client
import multiprocessing
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.client import Server  # noqa: E402
from bench.scratch import start_django  # noqa: E402
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID  # noqa: E402

PROCESSES = 4
WARM_UP = 256
ROUNDS = 4  # Part (a) alternates the 401s and the hand-outs in this many rounds.


def configure(workdir, fake):
    start_django(
        workdir,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS="bench-" + secrets.token_urlsafe(32),
        BC_AUTHORITY_HOST=fake.url,
        BC_API_HOST=fake.url,
        BC_API_RATE_LIMIT="100000000/hour",  # Counted as always, never reached.
    )


def set_up(fake):
    """A service-to-service authentication holding a fresh token, and a key for it."""
    from authentications.api import keys
    from authentications.api.models import ApiCall, ApiKey
    from authentications.connections.models import Authentication
    from authentications.connections.tokens import get_access_token
    from authentications.endpoints.models import Endpoint

    ApiCall.objects.all().delete()
    ApiKey.objects.all().delete()
    Endpoint.objects.all().delete()
    Authentication.objects.all().delete()
    authentication = Authentication.objects.create(
        name="Bench",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        client_id=CLIENT_ID,
        tenant_id=TENANT_ID,
        client_secret=CLIENT_SECRET,
        base_url=fake.base_url,
    )
    get_access_token(authentication)
    _, plaintext = keys.create_key(
        name="Bench",
        scopes=["tokens", "bc.read"],
        authentications=[authentication],
    )
    return authentication.pk, plaintext


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port, workers, threads, log_path):
    """gunicorn with `workers` processes of `threads` threads (by default one per client, so
    no request waits for a free thread: gthread hands an idle keep-alive connection back to
    its poller, and `--threads` tries fewer)."""
    env = {
        **os.environ,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
    }
    command = [str(Path(sys.executable).parent / "gunicorn")]
    # A file, not a pipe: Django logs each 401 at WARNING, and a full pipe would stall it.
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/api/schema/", timeout=5)
            return server, url
        except requests.ConnectionError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"gunicorn did not start:\n{Path(log_path).read_text()}")


def workers_of(master):
    """The pids of gunicorn's workers (children of its master)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.append(int(entry.name))
    return children


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def ms(values, fraction):
    return f"{percentile(values, fraction) * 1000:.1f}"


# --- (a) token hand-out against a 401, 32 concurrent clients --------------------------------


def _client_process(args):
    """One process of `threads` clients, each on its own keep-alive connection (http.client:
    a fraction of requests' CPU per call, so the clients measure the server, not themselves)."""
    url, authorization, threads, count = args
    parts = urlsplit(url)
    times, statuses, lock = [], [], threading.Lock()

    def client():
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Authorization": authorization, "Content-Length": "0"}
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", parts.path, headers=headers)
            answer = connection.getresponse()
            answer.read()
            elapsed = time.perf_counter() - started
            with lock:
                times.append(elapsed)
                statuses.append(answer.status)
        connection.close()

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return times, statuses


def load(url, authorization, *, clients, total):
    threads = clients // PROCESSES
    jobs = [(url, authorization, threads, total // clients)] * PROCESSES
    with multiprocessing.Pool(PROCESSES) as pool:
        results = pool.map(_client_process, jobs)
    times = [t for result in results for t in result[0]]
    statuses = {s for result in results for s in result[1]}
    return times, statuses


def part_a(url, pk, plaintext, args):
    token_url = f"{url}/api/v1/authentications/{pk}/token/"
    good, bad = f"Api-Key {plaintext}", "Api-Key " + "x" * 8 + "." + "y" * 32
    load(token_url, good, clients=args.clients, total=WARM_UP)
    load(token_url, bad, clients=args.clients, total=WARM_UP)
    refused, handed, refused_statuses, handed_statuses = [], [], set(), set()
    for _ in range(ROUNDS):  # Taking turns: whatever drifts (a checkpoint) hits both alike.
        times, statuses = load(token_url, bad, clients=args.clients, total=args.requests // ROUNDS)
        refused += times
        refused_statuses |= statuses
        times, statuses = load(token_url, good, clients=args.clients, total=args.requests // ROUNDS)
        handed += times
        handed_statuses |= statuses
    assert refused_statuses == {401} and handed_statuses == {200}, (
        refused_statuses,
        handed_statuses,
    )
    ratio = percentile(handed, 0.99) / percentile(refused, 0.99)
    print(
        f"(a) {args.clients} clients, {args.requests} requests each way: token hand-out "
        f"p50 {ms(handed, 0.5)} ms, p99 {ms(handed, 0.99)} ms; refused key (401) p50 "
        f"{ms(refused, 0.5)} ms, p99 {ms(refused, 0.99)} ms; hand-out p99 / 401 p99 = "
        f"{ratio:.2f} (goal <= 1.3, and <= 25 ms)"
    )


# --- (b) what the proxy adds to one small GET -----------------------------------------------


def part_b(url, pk, plaintext, fake, args):
    from authentications.connections.tokens import get_access_token

    path = f"companies({fake.company_id})/customers?$top=1"
    proxied = requests.Session()
    proxied.headers["Authorization"] = f"Api-Key {plaintext}"
    direct = requests.Session()
    direct.headers["Authorization"] = f"Bearer {get_access_token(pk)}"
    urls = {
        "proxy": (proxied, f"{url}/api/v1/authentications/{pk}/bc/{path}"),
        "direct": (direct, f"{fake.base_url}/{path}"),
    }
    times = {"proxy": [], "direct": []}
    for round_ in range(args.small_gets + 50):
        for name, (session, target) in urls.items():  # Interleaved: drift hits both alike.
            started = time.perf_counter()
            answer = session.get(target, timeout=30)
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200, answer.text[:200]
            if round_ >= 50:
                times[name].append(elapsed)
    p50 = percentile(times["proxy"], 0.5) - percentile(times["direct"], 0.5)
    p99 = percentile(times["proxy"], 0.99) - percentile(times["direct"], 0.99)
    print(
        f"(b) proxy overhead on one small GET over {args.small_gets} requests: p50 "
        f"{p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (proxy p50 "
        f"{percentile(times['proxy'], 0.5) * 1000:.1f} ms, direct p50 "
        f"{percentile(times['direct'], 0.5) * 1000:.1f} ms; goal p50 <= 10 ms)"
    )


# --- (c) 50,000 rows paged through the proxy ------------------------------------------------


def page_through(session, url, page_size):
    rows, started = 0, time.perf_counter()
    while url:
        answer = session.get(url, headers={"Prefer": f"odata.maxpagesize={page_size}"}, timeout=120)
        answer.raise_for_status()
        body = answer.json()
        rows += len(body["value"])
        url = body.get("@odata.nextLink")
    return time.perf_counter() - started, rows


def part_c(url, pk, plaintext, fake, server, args):
    from authentications.connections.tokens import get_access_token

    proxied = requests.Session()
    proxied.headers["Authorization"] = f"Api-Key {plaintext}"
    direct = requests.Session()
    direct.headers["Authorization"] = f"Bearer {get_access_token(pk)}"
    path = f"companies({fake.company_id})/customers"
    proxy_url = f"{url}/api/v1/authentications/{pk}/bc/{path}"
    workers = workers_of(server.pid)
    page_through(proxied, proxy_url + "?$top=100", args.page_size)  # Warm both workers.
    page_through(proxied, proxy_url + "?$top=100", args.page_size)
    before = {pid: peak_rss_mb(pid) for pid in workers}
    for _ in range(2):  # Twice: each worker has surely served one.
        _, small = page_through(proxied, f"{proxy_url}?$top={args.small_rows}", args.page_size)
    after_small = {pid: peak_rss_mb(pid) for pid in workers}
    ratios = []
    for _ in range(3):
        direct_seconds, direct_rows = page_through(
            direct, f"{fake.base_url}/{path}", args.page_size
        )
        proxy_seconds, proxy_rows = page_through(proxied, proxy_url, args.page_size)
        assert direct_rows == proxy_rows == args.rows, (direct_rows, proxy_rows)
        ratios.append((proxy_seconds / direct_seconds, proxy_seconds, direct_seconds))
    after_all = {pid: peak_rss_mb(pid) for pid in workers}
    ratio, proxy_seconds, direct_seconds = sorted(ratios)[1]  # The median round.
    print(
        f"(c) {args.rows:,} rows in pages of {args.page_size:,}: through the proxy "
        f"{proxy_seconds:.2f} s, directly {direct_seconds:.2f} s, ratio {ratio:.2f} (goal <= 1.25)"
    )
    for pid in workers:
        print(
            f"    worker {pid} peak memory: {before[pid]:.1f} MB warm, "
            f"{after_small[pid]:.1f} MB after {small:,} rows, {after_all[pid]:.1f} MB after "
            f"{args.rows:,} rows x 3 (goal: flat)"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3200)
    parser.add_argument("--small-gets", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--small-rows", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--parts", default="abc")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    fake = Server(args.rows)
    try:
        configure(workdir, fake)
        from django.db import connection

        pk, plaintext = set_up(fake)
        threads = args.threads or -(-args.clients // args.workers)
        server, url = serve(free_port(), args.workers, threads, workdir / "gunicorn.log")
        try:
            print(
                f"database: {connection.vendor}; gunicorn {args.workers} workers x "
                f"{threads} threads"
            )
            if "a" in args.parts:
                part_a(url, pk, plaintext, args)
            if "b" in args.parts:
                part_b(url, pk, plaintext, fake, args)
            if "c" in args.parts:
                part_c(url, pk, plaintext, fake, server, args)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
