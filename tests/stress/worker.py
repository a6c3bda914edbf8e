"""One OS process of the stress test: threads asking for tokens and calling BC until a deadline.

    python -m tests.stress.worker --threads 8 --until <epoch> --pks 1,2,3

Prints one JSON line: calls made and failures by kind (error class and code, never a
message that could hold a secret).
"""

import argparse
import json
import os
import random
import threading
import time
from collections import Counter


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--until", type=float, required=True)
    parser.add_argument("--pks", required=True)
    parser.add_argument("--no-bc", action="store_true", help="Only call get_access_token.")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcconnect.settings")
    import django

    django.setup()
    pks = [int(pk) for pk in args.pks.split(",")]
    totals = Counter()
    failures = Counter()
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_hammer, args=(pks, args.until, not args.no_bc, totals, failures, lock)
        )
        for _ in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"pid": os.getpid(), "calls": dict(totals), "failures": dict(failures)}))


def _hammer(pks, until, with_bc, totals, failures, lock):
    from django.db import connection

    from authentications.connections import tokens

    calls, failed = Counter(), Counter()
    try:
        while time.time() < until:
            pk = random.choice(pks)
            use_bc = with_bc and random.random() < 0.5
            kind = "bc_client" if use_bc else "get_access_token"
            calls[kind] += 1
            try:
                if kind == "get_access_token":
                    if not tokens.get_access_token(pk):
                        raise AssertionError("empty token")
                elif not _client(pk).companies():
                    raise AssertionError("no companies")
            except Exception as err:
                failed[f"{kind}: {type(err).__name__} {getattr(err, 'code', '')}".strip()] += 1
    finally:
        connection.close()
        with lock:
            totals.update(calls)
            failures.update(failed)


_clients = {}
_clients_lock = threading.Lock()


def _client(pk):
    """One BC client per authentication per process, shared by its threads, as an app would."""
    with _clients_lock:
        if pk not in _clients:
            _clients[pk] = _bc_client(pk)
        return _clients[pk]


def _bc_client(pk):
    from authentications.connections import tokens
    from authentications.connections.models import Authentication

    return tokens.bc_client(Authentication.objects.get(pk=pk))


if __name__ == "__main__":
    main()
