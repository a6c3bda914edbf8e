"""Many processes and threads want tokens for 50 connections whose tokens keep expiring.

8 OS processes x 8 threads call `get_access_token` and the BC client, and a
`refresh_tokens` loop runs beside them, against a fake Microsoft whose refresh tokens
are single-use and rotate. Whatever the database, each expiry costs exactly one refresh,
nothing fails and no refresh token is lost.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from authentications.connections import oauth
from authentications.connections.models import Authentication
from authentications.signin import flows
from tests.fakes.entra import CLIENT_SECRET, TENANT_ID
from tests.helpers import database_url

from .conftest import reports

pytestmark = [pytest.mark.stress, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = int(os.environ.get("STRESS_PROCESSES", 8))
THREADS = int(os.environ.get("STRESS_THREADS", 8))
AUTHENTICATIONS = int(os.environ.get("STRESS_AUTHENTICATIONS", 50))
RUN_SECONDS = float(os.environ.get("STRESS_SECONDS", 40))
LIFETIME = 66  # Seconds an access token lives at the fake Microsoft: due 6 s after issue.
WINDOW = 60  # Refresh when a token has this little left: refresh_tokens --within 1, and skew.
TOLERANCE = 2.0  # Seconds of clock slack between the fake's stamps and ours.


def child_env(fake):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BC_"))}
    env.update(
        DATABASE_URL=database_url(),
        SECRET_KEY=django_settings.SECRET_KEY,
        FERNET_KEYS=",".join(django_settings.FERNET_KEYS),
        PUBLIC_BASE_URL=django_settings.PUBLIC_BASE_URL,
        BC_AUTHORITY_HOST=fake.url,
        BC_API_HOST=fake.url,
        BC_TOKEN_SKEW_SECONDS=str(WINDOW),
        REQUESTS_CA_BUNDLE=str(fake.ca_path),
        EMAIL_URL="dummymail://",
        LOG_LEVEL="WARNING",
    )
    return env


def connect_all(fake, count):
    """`count` authentications, each its own Entra app and BC user, signed in for real."""
    fake.entra.access_token_lifetime = LIFETIME
    pks = {}
    for number in range(count):
        client_id = str(uuid.uuid4())
        upn = f"stress{number}@contoso.com"
        fake.entra.register_app(client_id, CLIENT_SECRET, oauth.redirect_uri())
        fake.entra.add_user(upn, f"Stress user {number}")
        authentication = Authentication.objects.create(
            name=f"Stress {number}",
            client_id=client_id,
            tenant_id=TENANT_ID,
            client_secret=CLIENT_SECRET,
            base_url=f"{fake.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
        )
        start = flows.start_sign_in(authentication, via=flows.AuthorizationRequest.Via.ADMIN)
        _, fields = fake.sign_in(start.authorize_url, username=upn)
        flows.complete_sign_in(fields, {start.cookie_name: start.cookie_value})
        pks[client_id] = authentication.pk
    return pks


class RefreshLoop(threading.Thread):
    """cron, impatient: `refresh_tokens --within 1` again and again until stopped."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.env, self.stopped, self.runs, self.failed_runs = env, threading.Event(), 0, []
        self.outcomes = Counter()

    def run(self):
        while not self.stopped.is_set():
            result = subprocess.run(
                [sys.executable, "manage.py", "refresh_tokens", "--within", "1", "--json"],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.runs += 1
            outcomes = [json.loads(line) for line in result.stdout.splitlines()]
            self.outcomes.update(outcome.get("outcome", "?") for outcome in outcomes)
            if result.returncode != 0:
                failed = [o for o in outcomes if o.get("outcome") == "failed"]
                self.failed_runs.append(f"{time.time():.1f}: {failed or result.stderr[-300:]}")
            self.stopped.wait(0.5)


def bc_client_available():
    """Whether the BC client is on this branch yet (the workers call it when it is)."""
    from authentications.connections import tokens

    return hasattr(tokens, "bc_client")


def run_workers(env, pks, until):
    command = [
        sys.executable,
        "-m",
        "tests.stress.worker",
        "--threads",
        str(THREADS),
        "--until",
        str(until),
        "--pks",
        ",".join(map(str, pks)),
        *([] if bc_client_available() else ["--no-bc"]),
    ]
    workers = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    results, crashed = [], []
    for worker in workers:
        out, err = worker.communicate(timeout=RUN_SECONDS + 300)
        if worker.returncode != 0 or not out.strip():
            crashed.append(err.strip()[-500:])
        else:
            results.append(json.loads(out.strip().splitlines()[-1]))
    return results, crashed


def per_expiry_refreshes(fake, client_id, stopped):
    """Refreshes counted against each expiry of this app's tokens during the run.

    Token k falls due at expires_k - WINDOW; the refresh that issues token k+1 belongs to
    the latest expiry at or before it. An expiry before the workers `stopped` that got no
    refresh counts 0, two refreshes for one expiry count 2.
    """
    with fake.entra.lock:
        issued = sorted(
            info["expires_at"] - LIFETIME
            for info in fake.entra.access_tokens.values()
            if info["client_id"] == client_id
        )
    due = [moment + LIFETIME - WINDOW for moment in issued]
    counts = [0] * len(due)
    for refreshed_at in issued[1:]:
        fallen_due = [i for i, moment in enumerate(due) if moment <= refreshed_at + TOLERANCE]
        if fallen_due:
            counts[fallen_due[-1]] += 1
        else:  # A refresh before any token was due: as wrong as a second refresh.
            counts[0] += 2
    return [n for n, moment in zip(counts, due, strict=True) if moment <= stopped - TOLERANCE or n]


def lost_refresh_tokens(fake, pks):
    """Connections whose stored refresh token is not the one live token the fake holds."""
    lost = []
    for client_id, pk in pks.items():
        with fake.entra.lock:
            live = [
                token
                for token, grant in fake.entra.refresh_tokens.items()
                if grant["client_id"] == client_id and not grant["used"]
            ]
        stored = Authentication.objects.get(pk=pk).refresh_token
        if live != [stored]:
            lost.append(pk)
    return lost


def test_each_expiry_costs_one_refresh_under_load(fake_microsoft, transactional_db):
    vendor = connection.vendor
    pks = connect_all(fake_microsoft, AUTHENTICATIONS)
    env = child_env(fake_microsoft)
    token_requests_before = len(fake_microsoft.entra.token_requests)
    loop = RefreshLoop(env)
    started = time.time()
    until = started + RUN_SECONDS
    loop.start()
    results, crashed = run_workers(env, list(pks.values()), until)
    loop.stopped.set()
    loop.join(timeout=180)
    ended = time.time()

    calls = Counter()
    failures = Counter()
    for result in results:
        calls.update(result["calls"])
        failures.update(result["failures"])
    entra = fake_microsoft.entra
    counts, requests_per_expiry = [], []
    for client_id in pks:
        expiries = per_expiry_refreshes(fake_microsoft, client_id, until)
        counts.extend(expiries)
        asked = sum(1 for grant in entra.token_requests if grant == ("refresh_token", client_id))
        requests_per_expiry.append(asked / max(len(expiries), 1))
    lost = lost_refresh_tokens(fake_microsoft, pks)
    refreshes = entra.count("refresh_token")
    statuses = Counter(Authentication.objects.values_list("status", flat=True))
    reports.extend(
        [
            f"[{vendor}] {PROCESSES} processes x {THREADS} threads, {AUTHENTICATIONS} "
            f"authentications, {ended - started:.0f} s, token lifetime {LIFETIME} s",
            f"[{vendor}] requests made: {sum(calls.values())} "
            f"({calls['get_access_token']} get_access_token, {calls['bc_client']} BC client"
            f"{'' if bc_client_available() else ': not on this branch yet'}); "
            f"TLS connections to the fake Microsoft: {fake_microsoft.connections_opened}",
            f"[{vendor}] token requests to Entra during the run: "
            f"{len(entra.token_requests) - token_requests_before} ({refreshes} refresh_token)",
            f"[{vendor}] expiries: {len(counts)}; refreshes per authentication per expiry: "
            f"min {min(counts, default=0)}, max {max(counts, default=0)}; refresh requests "
            f"per authentication per expiry: min {min(requests_per_expiry):g}, "
            f"max {max(requests_per_expiry):g}",
            f"[{vendor}] refresh_tokens runs: {loop.runs} ({dict(loop.outcomes)}), "
            f"failed runs: {len(loop.failed_runs)}",
            f"[{vendor}] failures: {sum(failures.values()) + len(crashed)} {dict(failures)}; "
            f"refresh token reuse at Entra: {entra.refresh_token_reuse}; "
            f"lost refresh tokens: {len(lost)}; statuses: {dict(statuses)}",
        ]
    )

    assert crashed == []
    assert failures == Counter()
    assert loop.failed_runs == [], f"workers stopped at {until:.1f}"
    assert counts and set(counts) == {1}
    assert set(requests_per_expiry) == {1}
    assert entra.refresh_token_reuse == 0
    assert lost == []
    assert statuses == {Authentication.Status.CONNECTED: AUTHENTICATIONS}
