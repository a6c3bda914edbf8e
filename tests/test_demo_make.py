"""`make demo-change` and `make demo-worker` join the demo that runs: its ports, not the defaults.

Started as `make demo DEMO_PORT=8001 FAKE_PORT=8444` (8000 taken), the demo records its
ports; a second terminal's plain `make demo-change` then talks to that fake BC and prints
that site's links, and `make demo-worker` works on that database.
"""

import subprocess

from tests.helpers import ROOT


def make(*args):
    return subprocess.run(
        ["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def recipe(target, *variables):
    """The last command `make <target>` would run (make -n runs nothing)."""
    return make("-n", target, *variables).strip().splitlines()[-1]


def test_demo_change_and_worker_use_the_ports_the_running_demo_chose(tmp_path):
    demo_dir = f"DEMO_DIR={tmp_path}"
    make("demo-ports", demo_dir, "DEMO_PORT=8123", "FAKE_PORT=9443")  # What `make demo` runs.

    for target in ("demo-change", "demo-worker"):
        line = recipe(target, demo_dir)
        assert "PUBLIC_BASE_URL=http://127.0.0.1:8123 " in line, line
        assert "BC_API_HOST=https://127.0.0.1:9443 " in line, line
        assert f"DATABASE_URL=sqlite:///{tmp_path}/db.sqlite3 " in line, line


def test_ports_given_again_win_over_the_recorded_ones(tmp_path):
    demo_dir = f"DEMO_DIR={tmp_path}"
    make("demo-ports", demo_dir, "DEMO_PORT=8123", "FAKE_PORT=9443")

    line = recipe("demo-change", demo_dir, "FAKE_PORT=9555")

    assert "BC_API_HOST=https://127.0.0.1:9555 " in line
    assert "PUBLIC_BASE_URL=http://127.0.0.1:8123 " in line


def test_without_a_recorded_demo_the_defaults_apply(tmp_path):
    line = recipe("demo-worker", f"DEMO_DIR={tmp_path}")

    assert "PUBLIC_BASE_URL=http://127.0.0.1:8000 " in line
    assert line.endswith("manage.py db_worker --no-reload")
