"""docs/api.md's examples run as written against a live bcconnect (gunicorn, fake Microsoft)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

DOCS = ROOT / "docs" / "api.md"


def example(language, heading):
    """The first code block in `language` under the `### heading` of docs/api.md."""
    section = DOCS.read_text().split(f"### {heading}\n", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)[1]


@pytest.fixture
def example_env(served, make_key, tokens_planted):
    _, plaintext = make_key(tokens_planted, scopes=["tokens", "bc.read"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BC_"))}
    env.update(
        BCCONNECT_URL=served,
        BCCONNECT_API_KEY=plaintext,
        AUTHENTICATION_ID=str(tokens_planted.pk),
    )
    return env


def run(command, env):
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_curl_examples(example_env, fake_microsoft, tokens_planted):
    script = example("sh", "curl")

    output = run(["bash", "-e", "-o", "pipefail", "-c", script], example_env)

    assert '"name":"BC production"' in output
    assert '"token_type":"Bearer"' in output.replace(" ", "")
    assert fake_microsoft.bc.company.name in output


def test_the_python_example(example_env, fake_microsoft, tokens_planted):
    output = run([sys.executable, "-c", example("python", "Python (requests)")], example_env)

    assert "token valid for" in output
    assert fake_microsoft.bc.company.name in output
    assert tokens_planted.access_token not in output


@pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed")
def test_the_node_example(example_env, fake_microsoft):
    code = example("js", "Node (fetch, Node 18 or later)")

    output = run(["node", "--input-type=module", "-e", code], example_env)

    assert fake_microsoft.bc.company.name in output


def test_the_docs_name_every_problem_code():
    api = ROOT / "authentications" / "api"
    sources = (api / "problems.py").read_text() + (api / "permissions.py").read_text()
    codes = set(re.findall(r'\(\s*\d{3},\s*"([a-z_]+)"', sources))  # Problem(409, "needs_sign_in"
    codes |= set(re.findall(r'default_code = "([a-z_]+)"', sources))
    codes |= set(re.findall(r'"[a-z_]+": "([a-z_]+)"', sources))  # DRF's codes, renamed.

    text = DOCS.read_text()
    assert {"needs_sign_in", "path_refused", "rate_limited", "bc_timeout"} <= codes
    assert [code for code in sorted(codes) if f"`{code}`" not in text] == []
