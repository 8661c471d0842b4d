"""The switches that let the module apply on LocalStack's free edition, which has neither WAFv2 nor
the X-Ray control plane: ``enable_waf`` and ``enable_xray_resources``, both on by default.

Turning them off must remove exactly the paid-edition resources (the web ACL with its association and
logging, the X-Ray sampling rule and group) and nothing else; tracing itself stays on.
"""

from __future__ import annotations

from typing import Any

import pytest

from devkit.local import BACKEND_TF_VARS, local_tf_vars
from devkit.terraform import planned_resources as flatten
from tests.plan.conftest import PLAN_SUFFIX, shared_plan

OFF = {"enable_waf": False, "enable_xray_resources": False}
XRAY_ADDRESSES = {
    "module.observability.aws_xray_sampling_rule.this[0]",
    "module.observability.aws_xray_group.this[0]",
}


@pytest.fixture(scope="module")
def plan_off(request: pytest.FixtureRequest) -> dict[str, Any]:
    return shared_plan(request, {"environment_suffix": PLAN_SUFFIX, **OFF}, f"terraform plan with {OFF}")


def _addresses(plan: dict[str, Any]) -> dict[str, str]:
    return {r["address"]: r["type"] for r in flatten(plan)}


def test_paid_edition_resources_are_planned_by_default(plan_json: dict[str, Any]) -> None:
    planned = _addresses(plan_json)
    for address in (
        "module.edge[0].aws_wafv2_web_acl.this",
        "module.edge[0].aws_wafv2_web_acl_association.stage",
        "module.edge[0].aws_wafv2_web_acl_logging_configuration.this",
        *XRAY_ADDRESSES,
    ):
        assert address in planned, address


def test_switching_off_removes_exactly_the_paid_edition_resources(
    plan_json: dict[str, Any], plan_off: dict[str, Any]
) -> None:
    default, off = _addresses(plan_json), _addresses(plan_off)
    assert set(off) <= set(default)
    removed = set(default) - set(off)
    edge = {a for a in default if a.startswith("module.edge[0].")}
    assert removed == edge | XRAY_ADDRESSES
    # The edge module holds the web ACL and what only exists for it (its log group and policy).
    assert {default[a] for a in edge} == {
        "aws_wafv2_web_acl",
        "aws_wafv2_web_acl_association",
        "aws_wafv2_web_acl_logging_configuration",
        "aws_cloudwatch_log_group",
        "aws_cloudwatch_log_resource_policy",
    }
    assert not [t for t in off.values() if t.startswith(("aws_wafv2_", "aws_xray_"))]
    assert len(off) == len(default) - len(removed) > 100


def test_tracing_stays_on_without_the_xray_control_plane(plan_off: dict[str, Any]) -> None:
    resources = flatten(plan_off)
    functions = [r["values"] for r in resources if r["type"] == "aws_lambda_function"]
    assert functions
    assert all(f["tracing_config"] == [{"mode": "Active"}] for f in functions)
    stages = [r["values"] for r in resources if r["type"] == "aws_api_gateway_stage"]
    assert stages and all(s["xray_tracing_enabled"] is True for s in stages)
    machines = [r["values"] for r in resources if r["type"] == "aws_sfn_state_machine"]
    assert machines and all(m["tracing_configuration"][0]["enabled"] is True for m in machines)


def test_outputs_without_waf(plan_off: dict[str, Any]) -> None:
    web_acl = plan_off["output_changes"]["web_acl_arn"]
    assert web_acl["after"] is None and not web_acl.get("after_unknown")


def test_only_the_localstack_backend_turns_them_off() -> None:
    # And the principal requirement: LocalStack never runs the Lambda authorizer (tests/emulator_gaps.py).
    assert BACKEND_TF_VARS["localstack"] == {**OFF, "require_authorizer_principal": False}
    assert {k: v for k, v in local_tf_vars("x1", backend="localstack").items() if k in OFF} == OFF
    assert not set(OFF) & set(local_tf_vars("x1", backend="moto"))


def test_the_api_functions_require_the_authorizers_principal_by_default(plan_json: dict[str, Any]) -> None:
    # The environment map is known only after apply (tests/apply checks REQUIRE_PRINCIPAL is in every
    # function's environment); the plan shows the value it is made from.
    assert plan_json["variables"]["require_authorizer_principal"]["value"] is True
