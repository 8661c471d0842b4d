"""Plan-level fixtures: the root module planned against the emulator (for its data sources).

- ``tf_workdir``: ``devkit.terraform.Terraform`` (a tftest ``TerraformTest``) on a scratch working copy
  of the root module with the emulator override, already initialised; ``.tfdir`` is its path.
- ``plan_json``: ``terraform show -json`` of ``plan -var environment_suffix=plantest`` (a dict).
- ``planned_resources``: flat ``[{"address", "type", "name", "values"}]`` over the root and every
  child module of ``planned_values`` (managed resources only).
- ``resources_of_type``: helper ``resources_of_type("aws_lambda_function")`` → list of those dicts.

Every test under tests/plan is marked ``plan``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devkit.build import BuildResult
from devkit.terraform import REPO_ROOT, Terraform, TerraformError, prepare_workdir
from devkit.terraform import planned_resources as flatten
from tests.support.plans import cached_plan

PLAN_SUFFIX = "plantest"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.plan)


@pytest.fixture(scope="session")
def tf_workdir(
    tmp_path_factory: pytest.TempPathFactory, emulator: Any, lambda_package: BuildResult
) -> Terraform:
    if not (REPO_ROOT / "main.tf").is_file():
        pytest.skip("the root module (main.tf) does not exist yet")
    workdir = prepare_workdir(
        tmp_path_factory.mktemp("plan-stack"), emulator.endpoint_url, package_path=lambda_package.path
    )
    tf = Terraform(workdir, timeout=900, log_path=workdir / "terraform.log")
    try:
        tf.init_dir()
    except TerraformError as exc:
        pytest.fail(f"terraform init failed:\n{exc}", pytrace=False)
    return tf


def shared_plan(
    request: pytest.FixtureRequest, tf_vars: dict[str, Any], what: str = "terraform plan"
) -> dict[str, Any]:
    """The plan of the root module with ``tf_vars``, made once per module content and variable set
    (tests.support.plans: shared by tests/plan, tests/security, every xdist worker and session);
    ``tf_workdir`` (emulator, init) is only set up when the plan is not cached yet."""
    from devkit.emulator.endpoints import selected_backend

    package: BuildResult = request.getfixturevalue("lambda_package")

    def make() -> dict[str, Any]:
        tf: Terraform = request.getfixturevalue("tf_workdir")
        plan: dict[str, Any] = tf.plan_json(tf_vars)
        return plan

    try:
        return cached_plan(tf_vars, make, package_path=package.path, backend=selected_backend("E2E_BACKEND"))
    except TerraformError as exc:
        pytest.fail(f"{what} failed:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def plan_json(request: pytest.FixtureRequest) -> dict[str, Any]:
    return shared_plan(request, {"environment_suffix": PLAN_SUFFIX})


@pytest.fixture(scope="session")
def planned_resources(plan_json: dict[str, Any]) -> list[dict[str, Any]]:
    return flatten(plan_json)


@pytest.fixture(scope="session")
def resources_of_type(planned_resources: list[dict[str, Any]]) -> Callable[[str], list[dict[str, Any]]]:
    def pick(resource_type: str) -> list[dict[str, Any]]:
        return [r for r in planned_resources if r["type"] == resource_type]

    return pick
