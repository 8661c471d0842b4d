"""`pip install .` into a clean venv (runtime dependencies only) gives a working operator CLI.

The on-call CLI must install on its own (pipx, a bastion's venv): no test library, no emulator,
no Lambda runtime library. This test installs a clean copy of the repository's tracked files the
way a user does and runs ``ops --help`` and every command's ``--help``; ``devkit`` without its
extra answers with the install hint instead of a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.cli import EXTRA_HINT

# slow (a clean `pip install .` into a new venv): `make test` runs it, `make check` leaves it out.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean-install")
    source = root / "src"
    git = shutil.which("git")
    assert git, "git lists the tracked files"
    listing = subprocess.run([git, "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)  # noqa: S603
    tracked = listing.stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(  # noqa: S603
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(source)],
        check=True,
        env=env,
        timeout=INSTALL_TIMEOUT_S,
    )
    return venv


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(  # noqa: S603
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=venv,
        check=False,
        timeout=120,
    )


def test_only_runtime_dependencies_are_installed(clean_venv: Path) -> None:
    probe = _run(
        clean_venv,
        "python",
        "-c",
        "import importlib.util as u; print(','.join(m for m in ('tftest', 'moto', 'pytest', "
        "'aws_lambda_powertools', 'aws_xray_sdk', 'fastjsonschema') if u.find_spec(m)))",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "", "a clean install carries no test, emulator or Lambda library"


def test_ops_help_and_every_command_help_work(clean_venv: Path) -> None:
    top = _run(clean_venv, "ops", "--help")
    assert top.returncode == 0, top.stderr
    commands = _run(
        clean_venv, "python", "-c", "from ops.cli.main import cli; print(' '.join(sorted(cli.commands)))"
    ).stdout.split()
    assert {"report", "cleanup", "redrive", "links", "trace", "status"} <= set(commands)
    for command in commands:
        answer = _run(clean_venv, "ops", command, "--help")
        assert answer.returncode == 0, f"ops {command} --help: {answer.stderr}"
        assert f"Usage: ops {command}" in answer.stdout


def test_devkit_without_its_extra_says_how_to_install_it(clean_venv: Path) -> None:
    answer = _run(clean_venv, "devkit", "--help")
    assert answer.returncode == 1
    assert EXTRA_HINT in answer.stderr
    assert "Traceback" not in answer.stderr
