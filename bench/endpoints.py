"""Benchmark endpoint paging against the fake BC on localhost (prints its figures).

    .venv/bin/python bench/endpoints.py [--parts a] [--pages 50] [--page-size 100]
        [--latency 0.2] [--work 0.15] [--rounds 3]

(a) 50 pages, each answered after 200 ms, read through `client.iter()` by a consumer that
    spends 150 ms per page: wall time divided by 50 x 200 ms, with `prefetch=True` (target
    <= 1.15: the next page is fetched while this one is consumed) and without (about 1.75:
    requests and work take turns).

The fake runs in a separate process (bench/client.py's `Server`), as real BC would. Each
part is a function of (args) that prints its lines, so parts can be added and picked with
`--parts`.
"""

import argparse
import sys
import time
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


PARTS = {"a": part_a}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="Comma-separated: a")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds per BC request.")
    parser.add_argument("--work", type=float, default=0.15, help="Consumer seconds per page.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    for name in args.parts.split(","):
        PARTS[name](args)


if __name__ == "__main__":
    main()
