"""Fixtures for testing the harness itself against hand-made resources in the session emulator."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.harness import make_zip
from tests.support.aws import create_service_role


@pytest.fixture(scope="session")
def moto_emulator(emulator: Any) -> Any:
    """The session emulator, only when it is the embedded moto server with the Lambda runtime hook."""
    if not getattr(emulator, "lambda_runtime_installed", False):
        pytest.skip("needs the embedded moto emulator with devkit.emulator.lambda_runtime installed")
    return emulator


@pytest.fixture(scope="session")
def lambda_role(moto_emulator: Any) -> str:
    iam = moto_emulator.client("iam")
    name = f"harness-lambda-{uuid.uuid4().hex[:8]}"
    arn = create_service_role(iam, name)
    # The emulator enforces IAM on the functions' calls: grant what the harness functions do, on the
    # harness's own resources only.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ssm:PutParameter",
                "Resource": "arn:aws:ssm:*:*:parameter/harness/*",
            },
            {
                "Effect": "Allow",
                "Action": "dynamodb:UpdateItem",
                "Resource": "arn:aws:dynamodb:*:*:table/harness-*",
            },
            {
                "Sid": "EventSourcePolling",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": "arn:aws:sqs:*:*:harness-*",
            },
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="harness", PolicyDocument=json.dumps(policy))
    return arn


@pytest.fixture
def make_function(moto_emulator: Any, lambda_role: str) -> Callable[..., dict[str, Any]]:
    """Create a Lambda function from ``{path: source}`` with a unique name; returns its configuration."""
    client = moto_emulator.client("lambda")

    def create(
        files: Mapping[str, str | bytes],
        handler: str,
        *,
        timeout: int = 10,
        environment: dict[str, str] | None = None,
        prefix: str = "harness",
    ) -> dict[str, Any]:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        config: dict[str, Any] = client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=lambda_role,
            Handler=handler,
            Code={"ZipFile": make_zip(files)},
            Timeout=timeout,
            MemorySize=512,
            Environment={"Variables": environment or {}},
        )
        return config

    return create
