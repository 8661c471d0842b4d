"""Flow 16: the local API answers curl, and the README's and runbooks' commands work as printed.

Against the session's deployment: its working copy stands in for ``.local/<backend>/stack`` (the only
substitution), and the commands run in a shell without any AWS or OPS variable, as a newcomer's would.

What runs: every ``ops`` line of the README's and runbooks' shell blocks, and the README's curl block.
What is only checked (``tests/tooling/test_readme.py``: each ``make`` target exists, each inline
``ops`` subcommand and option parses): ``make up``/``make test``/``make down`` and ``devkit``
lines (they are this suite's own lifecycle: running them here would deploy, test or destroy the
session's stack from inside itself), ``terraform`` and ``aws`` lines for a real account (they need
one), and the runbooks' inline ``ops …`` mentions in prose, whose placeholders (``<id>``) have no
value to run with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from devkit.cli.local_cmd import next_steps
from devkit.emulator.endpoints import selected_backend
from devkit.terraform import REPO_ROOT
from tests.emulator_gaps import supports
from tests.support.docs import shell_blocks, tool_commands
from tests.support.stack import Deployment

LOCAL_STACK = re.compile(r"\.local/(?:moto|localstack|<backend>)/stack")
# What a command that runs as printed never says.
BROKEN = ("Traceback", "Unable to locate credentials", "Could not connect", "command not found", "Usage:")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPS_", "E2E_"))}
    return {**env, **extra}


def _shell(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(  # noqa: S603 - the docs' own commands, in a scratch shell
        [bash, "-c", script],
        cwd=REPO_ROOT,
        env=_clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curls_make_up_prints_create_and_read_a_payment(deployment: Deployment) -> None:
    lines = next_steps(deployment.outputs, deployment.workdir)
    create = next(line for line in lines if line.startswith("curl -sS -X POST"))
    assert len(create.splitlines()) == 1
    created = _shell(create + " -w '\\n%{http_code}'")
    body, status = created.stdout.rsplit("\n", 1)
    assert status == "202", created.stdout + created.stderr
    transaction_id = _json(body)["transaction_id"]
    status_line = next(line for line in lines if line.startswith("curl -sS ") and "TRANSACTION_ID" in line)
    shown = _shell(status_line.replace("TRANSACTION_ID", transaction_id))
    assert _json(shown.stdout)["transaction_id"] == transaction_id
    # The URL is the stage's, as the deployed one would answer: no credentials, no payment. API
    # Gateway runs the authorizer before the API-key check, so the missing Authorization header is
    # what answers (401); where the emulator never runs authorizers, the missing key does (403).
    url = str(deployment.outputs["api_invoke_url"])
    assert url.startswith("http://127.0.0.1:") and url.endswith("/_user_request_")
    denied = _shell(f"curl -sS -o /dev/null -w '%{{http_code}}' -X POST {url}/transactions -d '{{}}'")
    assert denied.stdout == ("401" if supports("apigateway:lambda-authorizers") else "403")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_block_runs_as_printed(deployment: Deployment) -> None:
    block = next(b for b in shell_blocks("README.md") if "devkit env" in b and "curl" in b)
    script = block.replace(".venv/bin/devkit env", f".venv/bin/devkit env --tf-dir {deployment.workdir}")
    done = _shell(f"set -euo pipefail\n{script}")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = _json(done.stdout)
    assert shown["transaction_id"].startswith("txn_") and shown["status"]


def _commands() -> list[tuple[str, str]]:
    return [
        (doc, command) for doc in ("README.md", "docs/runbooks.md") for command in tool_commands(doc, "ops")
    ]


@pytest.mark.parametrize(("doc", "command"), _commands(), ids=[c for _, c in _commands()])
def test_every_ops_command_in_the_docs_runs_as_printed(
    deployment: Deployment, doc: str, command: str
) -> None:
    script = LOCAL_STACK.sub(str(deployment.workdir), command)
    script = re.sub(r"^ops ", ".venv/bin/ops ", script)
    # The runbooks' block exports OPS_TF_DIR for the deployment it operates: here, the session's.
    done = _shell(script, OPS_TF_DIR=str(deployment.workdir))
    said = done.stdout + done.stderr
    assert not [b for b in BROKEN if b in said], said
    verb = script.split()[3] if "--tf-dir" in script else script.split()[1]
    # The sample restore time predates this deployment: the documented one-line refusal (exit 2).
    refused_restore = verb == "restore" and done.returncode == 2 and "restorable time" in said
    assert done.returncode not in (2, 127) or verb == "status" or refused_restore, said
    if "--subscriptions" in script:
        assert done.returncode in (0, 1) and "subscription" in said.lower(), said  # 1: none confirmed
    elif "--verify" in script:
        # The sample cutoff has no run on this deployment: --verify says so and fails (never OK).
        assert done.returncode == 1 and "no cleanup run archived anything" in said, said
    elif verb in ("report", "links"):
        assert done.returncode == 0, said
    if verb == "status":
        allowed = {0, 1, 2}  # healthy, degraded, unhealthy
        if not supports("cloudwatch:percentile-statistics") and "'p99'" in said:
            allowed.add(3)  # the API check's p99 query fails on this emulator: UNKNOWN, and says so
        assert done.returncode in allowed, said
    if verb == "trace":
        assert done.returncode in (0, 1) and "txn_" in said, said  # the sample id is not in this deployment


def test_the_readme_resource_count_matches_the_deployment(deployment: Deployment) -> None:
    if selected_backend() != "moto":
        pytest.skip("the README counts the default (moto) deployment, WAF and X-Ray included")
    listed = subprocess.run(  # noqa: S603 - terraform from PATH
        [shutil.which("terraform") or "terraform", "state", "list"],
        cwd=deployment.workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    count = sum(1 for line in listed if line.strip() and ".data." not in f".{line}")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    stated = int(re.search(r"applies the module to it \(~(\d+)\s+resources", readme).group(1))  # type: ignore[union-attr]
    assert abs(stated - count) <= 3, f"README says ~{stated} resources, the deployment has {count}"
