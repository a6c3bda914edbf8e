"""Benchmark the BC client against the fake BC on localhost (prints its figures).

    .venv/bin/python bench/client.py [--customers 200000] [--page-size 1000] [--rounds 3]

(a) wall time of `client.iter()` over every customer divided by that of a bare
    `requests.Session` loop following `@odata.nextLink` (target <= 1.15);
(b) peak traced memory of the iteration at 20,000 and at 200,000 customers (target: the
    same within 10%);
(c) TCP connections the server accepted during one full iteration (target 1).

The fake runs in a separate process, so its allocations and its CPU do not count as the
client's.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bcconnect.client import BusinessCentralClient
from tests.fakes.bc import FakeBusinessCentral
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from tests.fakes.microsoft import FakeMicrosoft


def serve(customers, conn):
    """Child process: run the fake and answer 'connections' / ('latency', s) / 'stop'."""
    bc = FakeBusinessCentral(customers=customers)
    fake = FakeMicrosoft(cert_dir=tempfile.mkdtemp(prefix="bench-bc-"), parts=[bc]).start()
    fake.entra.register_app(CLIENT_ID, CLIENT_SECRET)
    conn.send((fake.url, str(fake.ca_path), bc.company.id))
    while True:
        command = conn.recv()
        if command == "connections":
            conn.send(fake.connections_opened)
        elif command[0] == "latency":  # Seconds each BC request takes (bench/endpoints.py).
            bc.latency = command[1]
            conn.send(bc.latency)
        else:
            fake.stop()
            return


class Server:
    def __init__(self, customers):
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=serve, args=(customers, child))
        self.process.start()
        self.url, self.ca_path, self.company_id = self.conn.recv()
        # Trust the fake's certificate authority the standard way (as tests and demos do).
        os.environ["REQUESTS_CA_BUNDLE"] = self.ca_path
        self.token = self._token()
        self.base_url = f"{self.url}/v2.0/{TENANT_ID}/Production/api/v2.0"
        self.customers_url = f"{self.base_url}/companies({self.company_id})/customers"

    def _token(self):
        answer = requests.post(
            f"{self.url}/{TENANT_ID}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scope": f"{self.url}/.default",
            },
            verify=self.ca_path,
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def connections(self):
        self.conn.send("connections")
        return self.conn.recv()

    def set_latency(self, seconds):
        self.conn.send(("latency", seconds))
        return self.conn.recv()

    def stop(self):
        self.conn.send("stop")
        self.process.join(10)

    def session(self):
        return requests.Session()

    def client(self):
        return BusinessCentralClient(
            self.base_url,
            lambda force_refresh=False: self.token,
            session=self.session(),
        ).company(self.company_id)


def bare_loop(server, page_size):
    """What an integrator hand-writes: a session and a nextLink loop."""
    session = server.session()
    headers = {
        "Authorization": f"Bearer {server.token}",
        "Prefer": f"odata.maxpagesize={page_size}",
        "Accept": "application/json",
    }
    url, count = server.customers_url, 0
    while url:
        page = session.get(url, headers=headers, timeout=(5, 60)).json()
        for _customer in page["value"]:
            count += 1
        url = page.get("@odata.nextLink")
    return count


def client_loop(server, page_size, client=None):
    count = 0
    for _customer in (client or server.client()).iter("customers", page_size=page_size):
        count += 1
    return count


def timed(function, *args):
    started = time.perf_counter()
    count = function(*args)
    return time.perf_counter() - started, count


def peak_memory(server, page_size):
    client = server.client()
    tracemalloc.start()
    tracemalloc.reset_peak()
    count = client_loop(server, page_size, client)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    big = Server(args.customers)
    try:
        bare_times, client_times = [], []
        for _ in range(args.rounds):  # Alternate, so drift hits both alike.
            seconds, count = timed(bare_loop, big, args.page_size)
            assert count == args.customers, count
            bare_times.append(seconds)
            seconds, count = timed(client_loop, big, args.page_size)
            assert count == args.customers, count
            client_times.append(seconds)
        # The best of several alternated runs: the machine's noise only ever adds time.
        bare, ours = min(bare_times), min(client_times)
        median_ratio = statistics.median(client_times) / statistics.median(bare_times)

        before = big.connections()
        client_loop(big, args.page_size)
        connections = big.connections() - before

        peak_big, count = peak_memory(big, args.page_size)
        assert count == args.customers
    finally:
        big.stop()
    small = Server(args.small)
    try:
        peak_small, count = peak_memory(small, args.page_size)
        assert count == args.small
    finally:
        small.stop()

    pages = -(-args.customers // args.page_size)
    print(f"customers: {args.customers:,} in {pages} pages of {args.page_size:,}")
    print(f"(a) bare requests loop: {bare:.2f} s (best of {args.rounds} alternated runs)")
    print(f"    client.iter():      {ours:.2f} s")
    print(f"    ratio:              {ours / bare:.3f}  (target <= 1.15)")
    print(f"    ratio of medians:   {median_ratio:.3f}")
    print(f"(b) peak memory at {args.small:,}: {peak_small / 1e6:.2f} MB")
    print(f"    peak memory at {args.customers:,}: {peak_big / 1e6:.2f} MB")
    print(f"    ratio:              {peak_big / peak_small:.3f}  (target 0.90-1.10)")
    print(f"(c) TCP connections opened by one iteration: {connections}  (target 1)")


if __name__ == "__main__":
    main()
