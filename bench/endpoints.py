"""Benchmark endpoint paging against the fake BC on localhost (prints its figures).

    .venv/bin/python bench/endpoints.py [--parts a] [--pages 50] [--page-size 100]
        [--latency 0.2] [--work 0.15] [--rounds 3]

(a) 50 pages, each answered after 200 ms, read through `client.iter()` by a consumer that
    spends 150 ms per page: wall time divided by 50 x 200 ms, with `prefetch=True` (target
    <= 1.15: the next page is fetched while this one is consumed) and without (about 1.75:
    requests and work take turns).
(b) CSV export of 200,000 customers through the admin's "Download CSV" (Django's test
    client, the whole view, streamed) divided by a bare `client.iter()` over the same rows
    in the same run (target <= 1.2); and the export's peak traced memory at 200,000 and at
    20,000 customers (target: the same within 10%). Both page at `--export-page-size`, the
    endpoint asking for it with a stored `Prefer: odata.maxpagesize=...` header.

    .venv/bin/python bench/endpoints.py --parts b [--customers 200000] [--small 20000]

The fake runs in a separate process (bench/client.py's `Server`), as real BC would. Each
part is a function of (args) that prints its lines, so parts can be added and picked with
`--parts`.
"""

import argparse
import os
import re
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import Server


def consume(rows, *, page_size, work):
    """Read `rows`, spending `work` seconds at the start of each page; the count read."""
    count = 0
    for _row in rows:
        if count % page_size == 0:
            time.sleep(work)
        count += 1
    return count


def timed_iteration(server, *, page_size, work, prefetch):
    client = server.client()
    rows = client.iter("customers", page_size=page_size, prefetch=prefetch)
    started = time.perf_counter()
    count = consume(rows, page_size=page_size, work=work)
    return time.perf_counter() - started, count


def part_a(args):
    """Prefetch: wall time of a paced consumer over slow pages, against the pages' latency."""
    server = Server(args.pages * args.page_size)
    try:
        server.set_latency(args.latency)
        best = {True: float("inf"), False: float("inf")}
        for _ in range(args.rounds):  # Alternate, so drift hits both alike.
            for prefetch in (True, False):
                seconds, count = timed_iteration(
                    server, page_size=args.page_size, work=args.work, prefetch=prefetch
                )
                assert count == args.pages * args.page_size, count
                best[prefetch] = min(best[prefetch], seconds)
    finally:
        server.stop()
    floor = args.pages * args.latency
    print(
        f"(a) {args.pages} pages of {args.page_size}, {args.latency * 1000:.0f} ms latency "
        f"per page, consumer {args.work * 1000:.0f} ms per page (best of {args.rounds})"
    )
    print(f"    pages x latency:        {floor:.2f} s")
    print(f"    iter(prefetch=True):    {best[True]:.2f} s")
    print(f"    ratio:                  {best[True] / floor:.3f}  (target <= 1.15)")
    print(f"    iter(prefetch=False):   {best[False]:.2f} s")
    print(f"    ratio:                  {best[False] / floor:.3f}  (expected about 1.75)")


class AdminSite:
    """bcconnect in this process (a fresh SQLite file), its admin reached by Django's test
    client, and an endpoint over the fake's customers, ready to download."""

    def __init__(self, server, page_size):
        os.environ.update(
            DATABASE_URL=f"sqlite:///{tempfile.mkdtemp(prefix='bench-endpoints-')}/db.sqlite3",
            BC_API_HOST=server.url,
            BC_AUTHORITY_HOST=server.url,
            DJANGO_SETTINGS_MODULE="bcconnect.settings",
        )
        import django

        django.setup()
        from django.core.management import call_command
        from django.test.utils import setup_test_environment

        setup_test_environment()  # The test client's host is allowed; mail stays local.
        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        self.page_size = page_size
        self.client = self._staff_client()
        self.endpoint = self._endpoint(server)
        self.url = f"/admin/authentications/endpoint/{self.endpoint.pk}/export/csv/"

    def point_at(self, server):
        """Export from another fake (same host, another port) from now on."""
        from authentications.connections.models import Authentication

        Authentication.objects.filter(pk=self.endpoint.authentication_id).update(
            base_url=server.base_url, access_token=server.token
        )
        self.endpoint.company_id = server.company_id
        self.endpoint.save()

    def _staff_client(self):
        from django.contrib.auth.models import User
        from django.test import Client

        client = Client()
        client.force_login(User.objects.create_superuser("bench", "bench@example.com", None))
        return client

    def _endpoint(self, server):
        from django.utils import timezone

        from authentications.connections.models import Authentication
        from authentications.endpoints.models import Endpoint
        from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID

        authentication = Authentication.objects.create(
            name="Bench",
            kind=Authentication.Kind.SERVICE_TO_SERVICE,
            client_id=CLIENT_ID,
            tenant_id=TENANT_ID,
            client_secret=CLIENT_SECRET,
            base_url=server.base_url,
            access_token=server.token,
            access_token_expires_at=timezone.now() + timedelta(hours=1),
            status=Authentication.Status.CONNECTED,
        )
        return Endpoint.objects.create(
            name="Customers",
            authentication=authentication,
            path="api/v2.0/companies({company})/customers",
            company_id=server.company_id,
            company_name="CRONUS USA, Inc.",
            headers=[["Prefer", f"odata.maxpagesize={self.page_size}"]],
        )

    def download(self):
        """Download the CSV; its rows, header excluded."""
        response = self.client.get(self.url)
        if response.status_code != 200:  # The admin said why on the page it sent us back to.
            page = self.client.get(response["Location"]).content.decode()
            said = re.findall(r'<li class="(?:error|warning)">(.*?)</li>', page)
            raise SystemExit(f"the download was refused: {said or page[:300]}")
        lines = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\r\n")
        return lines - 1


def bare_iteration(server, page_size, *, prefetch=False):
    """Count the rows of a bare `iter()`: the least any consumer of them can do."""
    rows = server.client().iter("customers", page_size=page_size, prefetch=prefetch)
    return sum(1 for _row in rows)


def peak_download(site):
    tracemalloc.start()
    tracemalloc.reset_peak()
    count = site.download()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, count


def least_peak(site, rows, rounds):
    """A peak is one moment of a run (when the collector last ran, which page was being
    parsed): the least of a few runs is what the row count costs."""
    peaks = []
    for _ in range(rounds):
        peak, count = peak_download(site)
        assert count == rows, (rows, count)
        peaks.append(peak)
    return min(peaks)


def part_b(args):
    """The admin's CSV download against a bare iteration, and its memory against row count."""
    server = Server(args.customers)
    try:
        site = AdminSite(server, args.export_page_size)
        runs = {
            "export": site.download,
            "iter": lambda: bare_iteration(server, args.export_page_size),
            "iter ahead": lambda: bare_iteration(server, args.export_page_size, prefetch=True),
        }
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.rounds):  # Alternate, so drift hits all alike.
            for name, run in runs.items():
                started = time.perf_counter()
                count = run()
                best[name] = min(best[name], time.perf_counter() - started)
                assert count == args.customers, (name, count)
        peak_big = least_peak(site, args.customers, args.rounds)
    finally:
        server.stop()
    small = Server(args.small)  # Its own test CA: the first fake is gone by now.
    try:
        site.point_at(small)
        peak_small = least_peak(site, args.small, args.rounds)
    finally:
        small.stop()
    print(
        f"(b) CSV export of {args.customers:,} customers in pages of {args.export_page_size:,} "
        f"(best of {args.rounds} alternated runs)"
    )
    print(f"    bare client.iter():     {best['iter']:.2f} s")
    print(f"    admin Download CSV:     {best['export']:.2f} s")
    print(f"    ratio:                  {best['export'] / best['iter']:.3f}  (target <= 1.2)")
    print(f"    client.iter(prefetch=True): {best['iter ahead']:.2f} s")
    ahead = best["export"] / best["iter ahead"]
    print(f"    ratio to it:            {ahead:.3f}  (the export's own cost)")
    print(
        f"    peak memory at {args.small:,} (least of {args.rounds}):   {peak_small / 1e6:.2f} MB"
    )
    print(
        f"    peak memory at {args.customers:,} (least of {args.rounds}):  {peak_big / 1e6:.2f} MB"
    )
    print(f"    ratio:                  {peak_big / peak_small:.3f}  (target within 10%)")


PARTS = {"a": part_a, "b": part_b}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="Comma-separated: a,b")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds per BC request.")
    parser.add_argument("--work", type=float, default=0.15, help="Consumer seconds per page.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=200_000, help="(b) rows exported.")
    parser.add_argument("--small", type=int, default=20_000, help="(b) rows, for memory.")
    parser.add_argument("--export-page-size", type=int, default=1_000)
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    for name in args.parts.split(","):
        PARTS[name](args)


if __name__ == "__main__":
    main()
