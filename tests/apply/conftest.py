"""Apply-level fixture: the real root module applied once per module to the session's emulator.

``deployment`` yields a ``Deployment`` (runner, suffix, variables, outputs, timings, boto3 clients).
Tests may call ``deployment.destroy()`` themselves (the destroy assertions do); otherwise it runs at
teardown. Every test under tests/apply is marked ``apply``. The suffix is unique per run, so
repeated or parallel runs against one emulator never collide.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.build import BuildResult
from devkit.emulator.endpoints import selected_backend
from devkit.local import local_tf_vars
from devkit.terraform import REPO_ROOT, Terraform, TerraformError, prepare_workdir


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.apply)


@dataclass
class Deployment:
    tf: Terraform
    emulator: Any
    suffix: str
    tf_vars: dict[str, Any]
    package: BuildResult
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    resource_count: int = 0
    destroyed: bool = False

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.emulator.client(service, **kwargs)

    def destroy(self) -> None:
        if self.destroyed:
            return
        started = time.monotonic()
        self.tf.destroy_vars(self.tf_vars)
        self.timings["destroy"] = time.monotonic() - started
        self.destroyed = True


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    emulator: Any,
    lambda_package: BuildResult,
    function_python: str,
) -> Iterator[Deployment]:
    if not (REPO_ROOT / "main.tf").is_file():
        pytest.skip("the root module (main.tf) does not exist yet")
    suffix = f"at{uuid.uuid4().hex[:6]}"
    workdir = prepare_workdir(
        tmp_path_factory.mktemp(f"apply-{suffix}"), emulator.endpoint_url, package_path=lambda_package.path
    )
    tf = Terraform(workdir, timeout=1800, log_path=workdir / "terraform.log")
    tf_vars = local_tf_vars(
        suffix, extra={"lambda_architecture": lambda_package.architecture}, backend=selected_backend()
    )
    dep = Deployment(tf=tf, emulator=emulator, suffix=suffix, tf_vars=tf_vars, package=lambda_package)
    try:
        started = time.monotonic()
        tf.init_dir()
        dep.timings["init"] = time.monotonic() - started
        started = time.monotonic()
        tf.apply_vars(tf_vars)
        dep.timings["apply"] = time.monotonic() - started
        dep.outputs = tf.outputs()
        dep.resource_count = tf.state_resource_count()
    except TerraformError as exc:
        with_cleanup_note = f"{exc}\n(full log: {workdir / 'terraform.log'})"
        try:
            tf.destroy_vars(tf_vars)
        except TerraformError:
            with_cleanup_note += "\n(destroy after the failed apply failed too)"
        pytest.fail(with_cleanup_note, pytrace=False)
    yield dep
    if not dep.destroyed:
        dep.destroy()
