"""One Terraform plan per variable set, shared by every test, pytest process and xdist worker.

``cached_plan(tf_vars, make)`` returns ``terraform show -json`` of a plan of the root module with
``tf_vars``; ``make()`` produces it on a miss. Plans are stored in ``build/cache/plans/<key>.json``
where the key hashes the module's content (:func:`devkit.terraform.module_digest`: every file a
working copy gets, the Lambda zip included), the variables, the Terraform binary, the emulator
backend, moto's version and the emulator/Terraform tooling source: a change to any of them is a new
key, never a stale plan. A file lock per key makes concurrent sessions (``pytest -n 2`` workers,
``make policy-audit`` then ``make test``) wait for one plan instead of each making its own.

``PLAN_CACHE=off`` makes every plan afresh (and stores nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devkit.filelock import exclusive
from devkit.terraform import REPO_ROOT, module_digest

CACHE_DIR = REPO_ROOT / "build" / "cache" / "plans"
KEEP = 32  # newest plans kept; older ones are removed when a new one is stored
_TOOLING = ("devkit/emulator", "devkit/terraform")


def _tooling_digest() -> str:
    digest = hashlib.sha256()
    for rel in _TOOLING:
        for path in sorted((REPO_ROOT / rel).rglob("*.py")):
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _terraform_identity() -> str:
    binary = shutil.which("terraform") or ""
    if not binary:
        return "none"
    stat = Path(binary).resolve().stat()
    return f"{Path(binary).resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def plan_key(
    tf_vars: Mapping[str, Any],
    *,
    package_path: Path | None = None,
    backend: str = "moto",
    source: Path = REPO_ROOT,
) -> str:
    material = {
        "module": module_digest(source=source, package_path=package_path),
        "vars": dict(tf_vars),
        "terraform": _terraform_identity(),
        "backend": backend,
        "moto": version("moto"),
        "tooling": _tooling_digest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:24]


def enabled() -> bool:
    return os.environ.get("PLAN_CACHE", "on").strip().lower() not in ("off", "0", "no", "false")


def _prune(cache_dir: Path) -> None:
    plans = sorted(cache_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in plans[KEEP:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".lock").unlink(missing_ok=True)


def cached_plan(
    tf_vars: Mapping[str, Any],
    make: Callable[[], dict[str, Any]],
    *,
    package_path: Path | None = None,
    backend: str = "moto",
    cache_dir: Path = CACHE_DIR,
) -> dict[str, Any]:
    """The plan of the root module with ``tf_vars``: from the cache, else ``make()`` (then stored)."""
    if not enabled():
        return make()
    key = plan_key(tf_vars, package_path=package_path, backend=backend)
    stored = cache_dir / f"{key}.json"
    with exclusive(cache_dir / f"{key}.lock"):
        if stored.is_file():
            loaded: dict[str, Any] = json.loads(stored.read_text(encoding="utf-8"))
            return loaded
        plan = make()
        fd, tmp = tempfile.mkstemp(prefix=f".{key}-", suffix=".tmp", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(plan, out)
        Path(tmp).replace(stored)
    _prune(cache_dir)
    return plan
