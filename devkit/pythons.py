"""Finding a CPython of a given minor version on this machine (the Lambda runtime's, 3.12).

The order, as for Terraform: an explicit variable (``PYTHON_LAMBDA``), then ``python3.12`` on PATH,
then pyenv's versions directory (``$(pyenv root)/versions/3.12.*/bin/python3.12``, newest first). A
candidate counts only if it runs and reports that version (pyenv's shims are on PATH but fail unless
the version is selected).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

LAMBDA_PYTHON_ENV = "PYTHON_LAMBDA"


class PythonNotFoundError(RuntimeError):
    """No working interpreter of the wanted version."""


def reported_version(python: str) -> str | None:
    """``major.minor`` the interpreter reports, or None when it does not run."""
    try:
        out = subprocess.run(  # noqa: S603 - a candidate interpreter path, no shell
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _pyenv_candidates(version: str) -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", "")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            roots.append(
                subprocess.run(  # noqa: S603 - pyenv from PATH
                    [pyenv, "root"], capture_output=True, text=True, timeout=30, check=True
                ).stdout.strip()
            )
    roots.append(str(Path.home() / ".pyenv"))
    found: list[Path] = []
    for root in dict.fromkeys(r for r in roots if r):
        found += Path(root).glob(f"versions/{version}.*/bin/python{version}")

    def order(path: Path) -> list[int]:
        return [int(x) if x.isdigit() else -1 for x in path.parents[1].name.split(".")]

    return [str(p) for p in sorted(found, key=order, reverse=True)]


def find_python(version: str, env_var: str = LAMBDA_PYTHON_ENV) -> str:
    """Path of a working ``python<version>``; :class:`PythonNotFoundError` says where it looked."""
    explicit = os.environ.get(env_var, "").strip()
    if explicit:
        got = reported_version(explicit)
        if got != version:
            raise PythonNotFoundError(
                f"{env_var}={explicit} is not a working Python {version} (it reports {got})"
            )
        return explicit
    candidates = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    candidates += _pyenv_candidates(version)
    for candidate in candidates:
        if reported_version(candidate) == version:
            return candidate
    raise PythonNotFoundError(
        f"no Python {version}: set {env_var}, put python{version} on PATH or install it with pyenv "
        f"(looked at: {', '.join(candidates) or 'nothing found'})"
    )
