"""Stress tests run only when asked for (`pytest -m stress`, as .ci/run does): they take minutes."""

from pathlib import Path

import pytest

reports = []  # Lines the stress tests print in the terminal summary.
FIGURE = "stress figure"  # tests/conftest.py prints these at the end of the run.


def pytest_collection_modifyitems(config, items):
    if "stress" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="stress test: run with `pytest -m stress` (.ci/run does)")
    here = Path(__file__).parent
    for item in items:  # Only this folder's: quicker `stress` tests elsewhere still run.
        if "stress" in item.keywords and here in item.path.parents:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Carry the lines a test (or its module's teardown) added on its report: under
    pytest-xdist the test ran in a worker, and only reports reach the terminal."""
    outcome = yield
    report = outcome.get_result()
    while reports:
        report.user_properties.append((FIGURE, reports.pop(0)))
