"""The README and the documentation site only show what works: the site builds with
--strict, and every path, `make` target, `manage.py` command and `authentications` import
they show exists (issue 20)."""

import ast
import functools
import importlib
import os
import re
import subprocess
import sys
import warnings

import pytest
from django.core.management import get_commands

from tests.helpers import ROOT, child_env, run_manage_py

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGE_IDS = [str(page.relative_to(ROOT)) for page in PAGES]

FENCED = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"(?<![\w/.{}$-])(?:tests|authentications|bench|deploy|bcconnect)/[\w./-]*")
MAKE = re.compile(r"\bmake ([a-z][\w-]*)")
MANAGE_PY = re.compile(r"\bmanage\.py\s+([a-z_]+)")
MAKE_TARGET = re.compile(r"^([a-z][\w-]*)\s*:(?!=)", re.MULTILINE)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")

# The deprecated import paths: a page may show them only to say so (docs/python-api.md).
SHIMS = {
    "authentications.tokens",
    "authentications.models",
    "authentications.endpoints",
    "authentications.change_notifications",
}


def code_shown(page):
    """Every inline code span and fenced block of a page."""
    text = page.read_text()
    blocks = [body for _, body in FENCED.findall(text)]
    inline = INLINE.findall(FENCED.sub("", text))
    return blocks + inline


def python_blocks(page):
    return [body for lang, body in FENCED.findall(page.read_text()) if lang == "python"]


def test_the_site_builds_with_strict(tmp_path):
    mkdocs = os.path.join(os.path.dirname(sys.executable), "mkdocs")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


def test_every_page_in_docs_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [page.name for page in PAGES[1:] if f": {page.name}" not in nav]

    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_repository_path_shown_exists(page):
    shown = {match.rstrip(".,:;") for code in code_shown(page) for match in REPO_PATH.findall(code)}
    missing = sorted(path for path in shown if not (ROOT / path).exists())

    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_relative_link_leads_to_a_file(page):
    targets = {target for target in LINK.findall(page.read_text()) if "://" not in target}
    missing = sorted(target for target in targets if not (page.parent / target).exists())

    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_make_target_shown_exists(page):
    targets = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text()))
    shown = {target for code in code_shown(page) for target in MAKE.findall(code)}

    assert shown - targets == set()


@functools.cache
def rq_engine_commands():
    """The commands a site on the RQ engine has (django-rq's rqworker among them)."""
    env = child_env(TASKS_BACKEND="django_tasks_rq.RQBackend", REDIS_URL="redis://127.0.0.1:1/0")
    result = run_manage_py("help", "--commands", env=env)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_manage_py_command_shown_exists(page):
    shown = set(MANAGE_PY.findall(page.read_text()))

    assert shown - set(get_commands()) - rq_engine_commands() == set()


def test_the_readme_is_what_a_newcomer_reads_first():
    readme = (ROOT / "README.md").read_text()

    assert len(readme.splitlines()) < 100
    for command in ("make run", "make test", "make demo", "make docs"):
        assert command in readme
    for words in ("Authorization URL", "Access token received", "Save and close"):
        assert words in readme  # On one line: what people search for.


def imports_shown(page):
    """(module, name) for each `authentications`/`bcconnect` name the page's Python imports."""
    for block in python_blocks(page):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module.startswith(
                ("authentications", "bcconnect")
            ):
                yield from ((node.module, alias.name) for alias in node.names)
            elif isinstance(node, ast.Import):
                yield from (
                    (alias.name, None)
                    for alias in node.names
                    if alias.name.startswith(("authentications", "bcconnect"))
                )


def imported(module, name):
    """Import `name` from `module` the way `from module import name` does."""
    found = importlib.import_module(module)
    if name is None:
        return found
    try:
        return getattr(found, name)
    except AttributeError:
        return importlib.import_module(f"{module}.{name}")


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_import_shown_works(page):
    for module, name in imports_shown(page):
        if module in SHIMS:
            with pytest.warns(DeprecationWarning, match="is deprecated"):
                imported(module, name)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)
                assert imported(module, name) is not None, f"{module}.{name}"


def test_the_pages_show_the_public_api_not_the_old_paths():
    """Only the page that explains the old paths names them in code."""
    users = sorted(
        str(page.relative_to(ROOT))
        for page in PAGES
        if any(module in SHIMS for module, _ in imports_shown(page))
    )

    assert users == ["docs/python-api.md"]
