"""The shared plan cache (tests/support/plans.py): one plan per module content and variable set."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from devkit.terraform import REPO_ROOT, module_digest
from tests.support import plans


def _module_copy(dest: Path) -> Path:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "provider.tf"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    shutil.copytree(REPO_ROOT / "modules", dest / "modules")
    return dest


def test_a_plan_is_made_once_per_variable_set_and_reused(tmp_path: Path) -> None:
    made: list[dict[str, Any]] = []

    def make(tf_vars: dict[str, Any]) -> Any:
        def run() -> dict[str, Any]:
            made.append(tf_vars)
            return {"planned": tf_vars}

        return run

    first = {"environment_suffix": "plantest"}
    other = {"environment_suffix": "plantest", "enable_waf": False}
    assert plans.cached_plan(first, make(first), cache_dir=tmp_path) == {"planned": first}
    assert plans.cached_plan(first, make(first), cache_dir=tmp_path) == {"planned": first}
    assert plans.cached_plan(other, make(other), cache_dir=tmp_path) == {"planned": other}
    assert made == [first, other]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_concurrent_sessions_wait_for_one_plan(tmp_path: Path) -> None:
    calls: list[int] = []
    started = threading.Event()

    def slow() -> dict[str, Any]:
        calls.append(1)
        started.set()
        threading.Event().wait(0.5)
        return {"n": len(calls)}

    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(plans.cached_plan({"v": 1}, slow, cache_dir=tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert calls == [1] and results == [{"n": 1}] * 3


def test_the_key_follows_the_module_the_package_and_the_variables(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    root = _module_copy(tmp_path / "root")
    package = tmp_path / "payment-app.zip"
    package.write_bytes(b"zip one")
    base = plans.plan_key({"a": 1}, package_path=package, source=root)
    assert plans.plan_key({"a": 1}, package_path=package, source=root) == base
    assert plans.plan_key({"a": 2}, package_path=package, source=root) != base
    assert plans.plan_key({"a": 1}, package_path=package, source=root, backend="localstack") != base
    package.write_bytes(b"zip two")
    assert plans.plan_key({"a": 1}, package_path=package, source=root) != base
    package.write_bytes(b"zip one")
    before = module_digest(source=root, package_path=package)
    module_file = next((root / "modules").rglob("main.tf"))
    module_file.write_text(module_file.read_text() + "\n# changed\n")
    assert module_digest(source=root, package_path=package) != before
    assert plans.plan_key({"a": 1}, package_path=package, source=root) != base
    # What is not part of a working copy does not move the key.
    changed = module_digest(source=root, package_path=package)
    (root / "modules" / "emulator_override.tf").write_text("# local only\n")
    (root / "notes.md").write_text("not terraform\n")
    assert module_digest(source=root, package_path=package) == changed


def test_plan_cache_off_makes_every_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAN_CACHE", "off")
    made: list[int] = []

    def make() -> dict[str, Any]:
        made.append(1)
        return {}

    plans.cached_plan({"v": 1}, make, cache_dir=tmp_path)
    plans.cached_plan({"v": 1}, make, cache_dir=tmp_path)
    assert made == [1, 1] and not list(tmp_path.glob("*.json"))
