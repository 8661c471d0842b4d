"""Fixtures of the security gate: the plan (shared with tests/plan when the tooling provides it)
and the static model of the Lambda code."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .code_calls import CodeModel, lambda_code_model
from .plan_model import Plan

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAN_SUFFIX = "plantest"


def _plan_against_emulator(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``terraform show -json`` of a plan of the root module against the session's emulator,
    the same way tests/plan/conftest.py makes it (used when that fixture is not visible here:
    fixtures of tests/plan/conftest.py only reach tests under tests/plan); made only when
    tests.support.plans has no plan of this module content and these variables yet."""
    from devkit.emulator.endpoints import selected_backend
    from devkit.terraform import Terraform, TerraformError, prepare_workdir
    from tests.support.plans import cached_plan

    if not (REPO_ROOT / "main.tf").is_file():
        pytest.skip("the root module (main.tf) does not exist yet")
    package = request.getfixturevalue("lambda_package")
    tf_vars = {"environment_suffix": PLAN_SUFFIX}

    def make() -> dict[str, Any]:
        emulator = request.getfixturevalue("emulator")
        workdir = prepare_workdir(
            request.getfixturevalue("tmp_path_factory").mktemp("security-plan"),
            emulator.endpoint_url,
            package_path=package.path,
        )
        terraform = Terraform(workdir, timeout=900, log_path=workdir / "terraform.log")
        terraform.init_dir()
        plan: dict[str, Any] = terraform.plan_json(tf_vars)
        return plan

    try:
        # One plan per module content and variable set, shared with tests/plan and every worker.
        return cached_plan(tf_vars, make, package_path=package.path, backend=selected_backend("E2E_BACKEND"))
    except TerraformError as exc:
        pytest.fail(f"terraform plan failed:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def security_plan_json(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The session's plan: ``PAYMENT_PLAN_JSON`` (a saved ``terraform show -json``, for quick
    iterations on the policies), else the shared ``plan_json`` fixture when a conftest above
    this directory provides it, else a plan made here."""
    saved = os.environ.get("PAYMENT_PLAN_JSON")
    if saved:
        loaded: dict[str, Any] = json.loads(Path(saved).read_text(encoding="utf-8"))
        return loaded
    try:
        shared: dict[str, Any] = request.getfixturevalue("plan_json")
    except pytest.FixtureLookupError:
        return _plan_against_emulator(request)
    return shared


@pytest.fixture(scope="session")
def plan(security_plan_json: dict[str, Any]) -> Plan:
    return Plan(security_plan_json)


@pytest.fixture(scope="session")
def code_model() -> CodeModel:
    return lambda_code_model(REPO_ROOT)


@pytest.fixture(scope="session")
def region(plan: Plan) -> Iterator[str]:
    for _, values in plan.resources("aws_region", mode="data"):
        if values.get("name"):
            yield str(values["name"])
            return
    yield str(plan.raw.get("variables", {}).get("aws_region", {}).get("value") or "us-east-1")
