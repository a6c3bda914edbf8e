"""The product stands without `tests/`: the fakes are development tools, never dependencies."""

import ast
import shutil
from pathlib import Path

from tests.helpers import run_manage_py

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("authentications", "bcconnect")


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_product_code_never_imports_tests():
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        for module in imported_modules(path)
        if module == "tests" or module.startswith("tests.")
    ]

    assert offenders == []


def test_tests_share_helpers_not_conftest_or_other_test_modules():
    """Fixtures come in as arguments; plain functions from tests/helpers.py (issue 11)."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (ROOT / "tests").rglob("*.py")
        for module in imported_modules(path)
        if module.rsplit(".", 1)[-1] == "conftest" or module.startswith("tests.test_")
    ]

    assert offenders == []


def test_no_two_tests_share_a_name():
    """A name picks one test for -k and in a failure report, wherever it lives (issue 11)."""
    paths_by_name = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                paths_by_name.setdefault(node.name, []).append(str(path.relative_to(ROOT)))

    assert {name: paths for name, paths in paths_by_name.items() if len(paths) > 1} == {}


def test_the_product_checks_and_migrates_without_tests(tmp_path):
    for name in (*PRODUCT, "templates"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", tmp_path)
    env = {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": ""}

    for command in (["check"], ["migrate", "--noinput", "-v", "0"], ["help"]):
        result = run_manage_py(*command, env=env, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / "tests").exists()
