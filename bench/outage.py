"""Benchmark: `refresh_tokens` on 1,000 due connections while Microsoft Entra is unreachable.

For each kind of outage, points BC_AUTHORITY_HOST at a local dead host (tests/fakes/outage.py)
and runs `refresh_tokens --workers 8` with the real default timeouts (BC_HTTP_TIMEOUT 5, 30).
Prints, per outage: the due connections, the wall time of the run, how many refreshes tried
Entra (and the TCP connections that reached the host), how many were skipped, and whether
every token was kept.

    .venv/bin/python bench/outage.py [--n 1000] [--workers 8] [--outages refused,silent,...]

Outages: refused (nothing listens), silent (accepts TCP, never answers: connect timeout during
the TLS handshake), silent-tls (answers the TLS handshake, then never answers: read timeout),
dns (a name that does not resolve). Uses a throw-away SQLite file unless BENCH_DATABASE_URL
names a scratch database (its authentications are deleted first).
"""

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import start_django  # noqa: E402
from tests.fakes.certs import make_certificates  # noqa: E402
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID  # noqa: E402
from tests.fakes.outage import DeadHost  # noqa: E402

OUTAGES = ("refused", "silent", "silent-tls", "dns")
UNRESOLVABLE = "https://login.bcconnect-outage.invalid"  # RFC 6761: never resolves.


def configure(workdir):
    """Start Django on a scratch database; trust the dead hosts' test certificate."""
    ca_path, _, _ = make_certificates(workdir / "certs")
    start_django(workdir, REQUESTS_CA_BUNDLE=str(ca_path), LOG_LEVEL="ERROR")


def create_due(count):
    """`count` connected authentications, all due for refresh (tokens need not be real)."""
    from authentications.connections.models import Authentication

    Authentication.objects.filter(name__startswith="outage-").delete()
    base_url = f"https://api.businesscentral.dynamics.com/v2.0/{TENANT_ID}/Production/api/v2.0"
    Authentication.objects.bulk_create(
        Authentication(
            name=f"outage-{n:04d}",
            client_id=CLIENT_ID,
            tenant_id=TENANT_ID,
            client_secret=CLIENT_SECRET,
            base_url=base_url,
            access_token=f"bench-at-{n}",
            refresh_token=f"bench-rt-{n}",
            status=Authentication.Status.CONNECTED,
        )
        for n in range(count)
    )
    reset()


def reset():
    """Every connection Connected and due again, as before the outage began."""
    from django.utils import timezone

    from authentications.connections.models import Authentication

    Authentication.objects.filter(name__startswith="outage-").update(
        status=Authentication.Status.CONNECTED,
        access_token_expires_at=timezone.now() + timedelta(minutes=5),
        last_refreshed_at=timezone.now() - timedelta(hours=1),
        consecutive_failures=0,
        last_error="",
        last_error_code="",
    )


def tokens_kept(count):
    from authentications.connections.models import Authentication

    rows = Authentication.objects.filter(name__startswith="outage-")
    kept = sum(
        row.refresh_token == f"bench-rt-{int(row.name.rsplit('-', 1)[1])}"
        and row.status == Authentication.Status.FAILING
        for row in rows
    )
    return kept == count


def run_outage(outage, *, count, workers, cert_dir):
    from django.conf import settings
    from django.core.management import CommandError, call_command

    from authentications.connections import oauth

    host = None if outage == "dns" else DeadHost(outage, cert_dir=cert_dir).start()
    settings.BC_AUTHORITY_HOST = host.url if host else UNRESOLVABLE
    oauth.clear_http_cache()  # A fresh cron process: no discovery cached.
    reset()
    out = StringIO()
    started = time.perf_counter()
    try:
        call_command("refresh_tokens", "--workers", str(workers), "--json", stdout=out)
        exit_status = 0
    except CommandError as err:
        exit_status = err.returncode
    wall = time.perf_counter() - started
    if host:
        host.stop()
    outcomes = Counter(json.loads(line)["outcome"] for line in out.getvalue().splitlines())
    return {
        "outage": outage,
        "due": count,
        "wall": wall,
        "tried": outcomes["failed"] + outcomes["refreshed"],
        "skipped": outcomes["skipped"],
        "connections": host.connections if host and outage != "refused" else None,
        "kept": tokens_kept(count),
        "exit": exit_status,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--outages", default=",".join(OUTAGES), help="comma-separated")
    args = parser.parse_args(argv)
    outages = [name.strip() for name in args.outages.split(",") if name.strip()]
    unknown = set(outages) - set(OUTAGES)
    if unknown:
        parser.error(f"unknown outage {', '.join(sorted(unknown))}; choose from {OUTAGES}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    configure(workdir)
    from django.conf import settings
    from django.db import connection

    from authentications.connections import tokens

    create_due(args.n)
    print(
        f"database: {connection.vendor}; BC_HTTP_TIMEOUT {tuple(settings.BC_HTTP_TIMEOUT)}; "
        f"refresh_tokens --workers {args.workers}; gives up after "
        f"{tokens.UNREACHABLE_LIMIT} failures in a row",
        flush=True,
    )
    for outage in outages:
        result = run_outage(outage, count=args.n, workers=args.workers, cert_dir=workdir / "certs")
        reached = "" if result["connections"] is None else f", {result['connections']} reached it"
        print(f"outage {outage}:")
        print(f"  due connections:     {result['due']}")
        print(f"  wall time of run:    {result['wall']:.1f} s (exit status {result['exit']})")
        print(f"  token requests attempted: {result['tried']} refreshes tried Entra{reached}")
        print(f"  skipped (not tried): {result['skipped']}")
        print(f"  tokens kept, all Failing: {'yes' if result['kept'] else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
