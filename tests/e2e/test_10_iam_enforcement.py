"""IAM at run time: the deployed functions call AWS with their own roles, and a missing grant fails the flow.

The embedded emulator hands each function temporary credentials of its execution role (sts:AssumeRole)
and evaluates the role's policies on every call (devkit.emulator.iam_enforcement). Every other flow of
this suite therefore proves that the roles grant what the code calls; this one proves the converse:
take one statement out of a deployed role policy through the IAM API and the flow fails with
AccessDenied, put it back and it works again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from payments.ids import new_transaction_id

from devkit.demo import Platform
from devkit.emulator import lambda_runtime
from tests.support.stack import Deployment


@pytest.mark.not_emulated(
    reason="LocalStack's free edition does not enforce IAM (ENFORCE_IAM is a paid feature)",
    backends=("localstack",),
)
def test_a_removed_grant_fails_the_flow_with_access_denied(
    platform: Platform,
    deployment: Deployment,
    emulator: Any,
    runtime: lambda_runtime.LambdaRuntime | None,
) -> None:
    if runtime is None or not getattr(emulator, "iam_enforced", False):
        pytest.skip("IAM is enforced at run time only in the embedded emulator")
    iam = emulator.client("iam")
    role = f"payment-status-{deployment.suffix}"
    original = iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
    if isinstance(original, str):
        original = json.loads(original)
    unknown = new_transaction_id()

    # With its grants, the status function reads the table and answers 404 for an unknown id.
    assert platform.get_transaction(unknown).status == 404

    reduced = {
        **original,
        "Statement": [s for s in original["Statement"] if s.get("Sid") != "TransactionsRead"],
    }
    assert len(reduced["Statement"]) == len(original["Statement"]) - 1, "the TransactionsRead grant exists"
    mark = len(runtime.history())
    iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(reduced))
    try:
        response = platform.get_transaction(unknown)
        assert response.status >= 500, (response.status, response.body)
        runs = [i for i in runtime.history()[mark:] if i.function_name == role]
        text = "\n".join(i.output + i.payload.decode() for i in runs)
        assert "AccessDenied" in text and "dynamodb:GetItem" in text, text[-3000:]
        assert f"assumed-role/{role}/" in text  # the call was made with the function's own role
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(original))

    assert platform.get_transaction(unknown).status == 404
