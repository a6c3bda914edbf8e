"""Stress tests run only when asked for (`pytest -m stress`, as .ci/run does): they take minutes."""

from pathlib import Path

import pytest

reports = []  # Lines the stress tests print in the terminal summary.


def pytest_collection_modifyitems(config, items):
    if "stress" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="stress test: run with `pytest -m stress` (.ci/run does)")
    here = Path(__file__).parent
    for item in items:  # Only this folder's: quicker `stress` tests elsewhere still run.
        if "stress" in item.keywords and here in item.path.parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if reports:
        terminalreporter.section("stress figures")
        for line in reports:
            terminalreporter.write_line(line)
