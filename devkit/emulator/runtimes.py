"""The Python a deployed function runs on in the emulators: the version its ``Runtime`` names.

Lambda's ``python3.12`` runtime is CPython 3.12 with boto3 (and what boto3 pulls in) installed; the
function's zip brings everything else. :func:`runtime_python` gives the same for the harness: an
interpreter of the runtime's version (:func:`devkit.pythons.find_python`: ``PYTHON_LAMBDA``, then
``python3.12`` on PATH, then pyenv's versions) in a virtualenv of its own that holds only the
libraries Lambda provides (:data:`devkit.build.RUNTIME_PROVIDED`, at the versions this virtualenv
pins, compiled by that interpreter). Nothing of the harness's own virtualenv (moto, Powertools, the
test tools) is importable, so a library missing from the zip, a 3.12-only incompatibility or a stale
``.pyc`` in the zip fails the tests as it would fail in Lambda.

Environments are cached in ``build/cache/lambda-runtimes/<runtime>-<key>`` (key: the interpreter's
version and the pins) behind a file lock, so concurrent sessions make one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from devkit.build import DEFAULT_CACHE, REPO_ROOT, RUNTIME_PROVIDED
from devkit.filelock import exclusive
from devkit.pythons import PythonNotFoundError, find_python

CACHE_DIR = DEFAULT_CACHE / "lambda-runtimes"
_RUNTIME_RE = re.compile(r"python(3\.\d+)")


class RuntimeNotAvailableError(RuntimeError):
    """No interpreter for the function's runtime on this machine (or not a Python runtime)."""


def declared_runtime(repo_root: Path = REPO_ROOT) -> str:
    """The runtime the functions module declares (``variable "runtime"``'s default in modules/functions)."""
    text = (repo_root / "modules" / "functions" / "variables.tf").read_text(encoding="utf-8")
    match = re.search(r'variable\s+"runtime"\s*\{[^}]*?default\s*=\s*"([^"]+)"', text, re.S)
    if not match:
        raise RuntimeNotAvailableError("modules/functions/variables.tf declares no default runtime")
    return match.group(1)


def runtime_version(runtime: str) -> str:
    """``python3.12`` → ``3.12``."""
    match = _RUNTIME_RE.fullmatch(runtime.strip())
    if not match:
        raise RuntimeNotAvailableError(f"runtime {runtime!r} is not a Python runtime the harness can run")
    return match.group(1)


def provided_pins() -> list[str]:
    """``name==version`` of the runtime-provided libraries, at this virtualenv's versions."""
    pins = []
    for name in sorted(RUNTIME_PROVIDED):
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{name}=={version(name)}")
    return pins


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeNotAvailableError(f"{what} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")


@functools.cache
def runtime_python(runtime: str, cache_dir: Path = CACHE_DIR) -> str:
    """The interpreter that runs functions of ``runtime`` (e.g. ``python3.12``); made once, cached."""
    wanted = runtime_version(runtime)
    try:
        interpreter = find_python(wanted)
    except PythonNotFoundError as exc:
        raise RuntimeNotAvailableError(
            f"the functions declare {runtime}, and this machine has no Python {wanted} to run them: {exc}"
        ) from exc
    full = subprocess.run(  # noqa: S603 - the interpreter find_python checked
        [interpreter, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    pins = provided_pins()
    key = hashlib.sha256("\n".join([full, *pins]).encode()).hexdigest()[:16]
    target = cache_dir / f"{runtime}-{key}"
    python = target / "bin" / "python"
    with exclusive(cache_dir / f"{runtime}-{key}.lock"):
        if (target / ".complete").is_file():
            return str(python)
        staging = Path(tempfile.mkdtemp(prefix=f".{runtime}-", dir=cache_dir))
        try:
            venv = staging / "venv"
            _run([interpreter, "-m", "venv", "--without-pip", str(venv)], f"{interpreter} -m venv")
            site = next((venv / "lib").glob("python*/site-packages"))
            # This virtualenv's pip installs the (pure-Python) wheels for the runtime's version; the
            # runtime's interpreter then compiles them, as the managed runtime ships them compiled.
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--no-deps",
                    "--no-compile",
                    "--only-binary=:all:",
                    "--python-version",
                    wanted,
                    "--implementation",
                    "cp",
                    "--target",
                    str(site),
                    *pins,
                ],
                f"installing {', '.join(pins)} for {runtime}",
            )
            _run([str(venv / "bin" / "python"), "-I", "-m", "compileall", "-q", str(site)], "compileall")
            (venv / ".complete").write_text("\n".join(pins) + "\n")
            if target.exists():
                shutil.rmtree(target)
            # A virtualenv records its own path only in pyvenv.cfg's "command" line; the interpreter
            # symlink and site-packages are relative, so the moved environment works.
            venv.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return str(python)
