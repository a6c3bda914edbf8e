"""Under gunicorn with two workers, `/metrics` adds up what every worker counted.

Real processes, production settings: each worker writes its counts to files in
PROMETHEUS_MULTIPROC_DIR, and a scrape, answered by either worker, reads them all. A worker
that dies leaves its counts behind, folded into the archive file by the master.
"""

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict

from tests.helpers import gunicorn_serving, run_manage_py

pytestmark = pytest.mark.serial

TOKEN = "scrape-token-of-the-gunicorn-test"
RESPONSES_2XX = 'bcconnect_http_responses_total{status="2xx"}'


@pytest.fixture
def metrics_dir(tmp_path):
    path = tmp_path / "metrics"
    path.mkdir()
    return path


@pytest.fixture
def two_workers(tmp_path, metrics_dir, gunicorn_env):
    """gunicorn with two workers (one thread each) sharing `metrics_dir`."""
    result = run_manage_py("migrate", "--noinput", env=gunicorn_env, timeout=120)
    assert result.returncode == 0, result.stderr
    env = {**gunicorn_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "METRICS_TOKEN": TOKEN}
    log_path = tmp_path / "gunicorn.log"
    args = ("--workers", "2", "--threads", "1")
    with gunicorn_serving(env, log_path, *args, workers_booted=2) as url:
        yield url


def counts_by_process(metrics_dir):
    """{pid: 2xx answers it counted}, read from the worker files themselves."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if '"bcconnect_http_responses_total"' in key and '"2xx"' in key:
                counts[path.stem.split("_", 1)[1]] = value
    return counts


def ask_until_both_workers_answered(url, metrics_dir):
    """Ask `/health/live` in parallel bursts until both workers counted; returns how many."""
    asked = 0
    with ThreadPoolExecutor(8) as pool:
        while asked < 2000:
            answers = list(pool.map(lambda _: requests.get(url, timeout=10), range(40)))
            assert all(answer.status_code == 200 for answer in answers)
            asked += len(answers)
            if len([pid for pid in counts_by_process(metrics_dir) if pid.isdigit()]) == 2:
                return asked
    pytest.fail("one worker answered every request")


def scraped(url):
    answer = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    return float(re.search(rf"^{re.escape(RESPONSES_2XX)} (\S+)$", answer.text, re.M).group(1))


def test_counts_of_both_workers_add_up_in_one_scrape(two_workers, metrics_dir):
    asked = ask_until_both_workers_answered(f"{two_workers}/health/live", metrics_dir)

    per_worker = counts_by_process(metrics_dir)
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values())
    assert sum(per_worker.values()) == asked
    for _ in range(4):  # Whichever worker answers the scrape, the sum is the same.
        assert scraped(f"{two_workers}/metrics") == asked
        asked += 1  # The scrape itself is counted once it has answered.


def test_a_killed_workers_counts_stay_and_its_file_is_folded(two_workers, metrics_dir):
    asked = ask_until_both_workers_answered(f"{two_workers}/health/live", metrics_dir)
    victim = int(next(iter(counts_by_process(metrics_dir))))

    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (metrics_dir / f"counter_{victim}.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not (metrics_dir / f"counter_{victim}.db").exists()
    assert (metrics_dir / "counter_archive.db").exists()
    assert scraped(f"{two_workers}/metrics") == asked


def test_without_a_directory_gunicorn_uses_its_own_and_removes_it(tmp_path, gunicorn_env):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**gunicorn_env, "TMPDIR": str(scratch)}
    with gunicorn_serving(env, tmp_path / "gunicorn.log", "--workers", "2") as url:
        assert requests.get(f"{url}/health/live", timeout=10).ok
        assert [path.name[:18] for path in scratch.iterdir()] == ["bcconnect-metrics-"]

    assert list(scratch.iterdir()) == []


def test_a_metrics_directory_that_does_not_exist_stops_start_up_with_one_line(
    tmp_path, gunicorn_env
):
    missing = tmp_path / "no-such-directory"

    result = run_manage_py("check", env={**gunicorn_env, "PROMETHEUS_MULTIPROC_DIR": str(missing)})

    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"bcconnect: PROMETHEUS_MULTIPROC_DIR={missing} is not a directory."
    )


def test_each_worker_starts_with_the_start_up_objects_out_of_the_collectors_sight(
    two_workers, tmp_path
):
    """gc.freeze before each fork: a full collection in a worker then skips Django and every
    library loaded in the master, so it stalls the worker's threads for milliseconds."""
    assert requests.get(f"{two_workers}/health/live", timeout=10).status_code == 200

    log = (tmp_path / "gunicorn.log").read_text()
    frozen = re.findall(r"Worker (\d+): (\d+) start-up objects kept out of garbage collection", log)
    assert len({pid for pid, _ in frozen}) == 2
    assert all(int(count) > 10_000 for _, count in frozen)
