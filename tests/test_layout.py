"""The product stands without `tests/`: the fakes are development tools, never dependencies."""

import ast
import shutil
import subprocess
import sys
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
        if module.startswith("tests.")
        and module.rsplit(".", 1)[-1].startswith(("conftest", "test_"))
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

    for command in (["check"], ["migrate", "--noinput", "-v", "0"], ["createcachetable"], ["help"]):
        result = run_manage_py(*command, env=env, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / "tests").exists()


# The app's top level holds only doors, the models face, the public API and the deprecation
# shims (issue 20): every capability lives in its own package.
TOP_LEVEL = {
    "__init__",
    "apps",
    "checks",
    "urls",
    "models",
    "sdk",
    "tokens",
    "change_notifications",
}
PACKAGES = {
    "admin", "management", "migrations", "static",
    "connections", "signin", "links", "certificates", "endpoints", "webhooks", "mail", "kit",
    "api", "operations",
}  # fmt: skip


def test_no_capability_module_sits_at_the_apps_top_level():
    app = ROOT / "authentications"
    modules = {path.stem for path in app.glob("*.py")}
    packages = {path.name for path in app.iterdir() if path.is_dir() and path.name != "__pycache__"}

    assert modules - TOP_LEVEL == set()
    assert packages - PACKAGES == set()


def test_nothing_imports_a_name_from_the_endpoints_shim():
    """`authentications.endpoints` (the package) only re-exports for old callers: the app,
    the tests and the benchmarks import its submodules."""
    offenders = []
    for folder in ("authentications", "bcconnect", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "authentications.endpoints":
                    names = {alias.name for alias in node.names}
                    submodules = {p.stem for p in (ROOT / "authentications/endpoints").glob("*.py")}
                    if names - submodules:
                        offenders.append(f"{path.relative_to(ROOT)}: {sorted(names)}")

    assert offenders == []


def test_the_import_contracts_hold():
    """The same check `make lint` runs: layers, independent capabilities, no cycles."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


# The whole-product tests stay at the top of tests/; everything else lives in the folder of
# the capability it tests (issue 20). kit holds the mail tests too (mail is one small module).
WHOLE_PRODUCT_TESTS = {
    "test_layout", "test_no_leaks", "test_deploy", "test_demo", "test_demo_make",
    "test_admin_site", "test_admin_wording", "test_public_api", "test_migrate_forward",
    "test_docs",
}  # fmt: skip
TEST_FOLDERS = {
    "connections", "signin", "links", "certificates", "endpoints", "webhooks", "client", "kit",
    "api", "operations", "e2e", "stress", "fakes",
}  # fmt: skip


def test_tests_mirror_the_tree():
    tests = ROOT / "tests"
    loose = {path.stem for path in tests.glob("test_*.py")} - WHOLE_PRODUCT_TESTS
    folders = {
        path.name for path in tests.iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    capabilities = {
        path.name
        for path in (ROOT / "authentications").iterdir()
        if (path / "__init__.py").exists()
        and path.name not in {"admin", "management", "migrations"}
    } - {"mail"}

    assert loose == set()
    assert folders - TEST_FOLDERS == set()
    assert capabilities - folders == set()
    assert all((tests / folder / "__init__.py").exists() for folder in folders)
