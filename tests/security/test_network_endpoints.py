"""Interface endpoints: one for each AWS service the in-VPC functions' code calls, and no other.

An interface endpoint costs about 7.30 USD a month per AZ whether used or not, and without a NAT
gateway it is the only way a private function reaches an AWS API: a missing one makes the call
time out on AWS (the emulator never notices), an extra one is money for nothing. The services
come from the same call analysis as the IAM test (code_calls.py). Logs and traces need no
endpoint (the Lambda service delivers them), nor does KMS when only services call it on the
functions' behalf."""

from __future__ import annotations

import re

import pytest

from .code_calls import CodeModel
from .plan_model import Plan

pytestmark = pytest.mark.plan

# IAM action prefix -> interface endpoint service name. S3 and DynamoDB use gateway endpoints.
ENDPOINT_FOR = {
    "sqs": "sqs",
    "sns": "sns",
    "states": "states",
    "ssm": "ssm",
    "cloudwatch": "monitoring",
    "kms": "kms",
    "logs": "logs",
    "xray": "xray",
    "sts": "sts",
    "secretsmanager": "secretsmanager",
    "lambda": "lambda",
    "events": "events",
    "scheduler": "scheduler",
}
GATEWAY = {"s3", "dynamodb"}


def _entry(handler: str) -> str:
    module, _, function = handler.rpartition(".")
    return f"{module}:{function}"


def test_interface_endpoints_are_exactly_the_services_the_code_calls(
    plan: Plan, code_model: CodeModel
) -> None:
    called: dict[str, set[str]] = {}
    functions = list(plan.resources("aws_lambda_function"))
    assert len(functions) == 12
    for _address, values in functions:
        if not values.get("vpc_config"):
            continue
        for action in code_model.actions(_entry(str(values["handler"]))):
            prefix = action.split(":", 1)[0]
            if prefix in GATEWAY:
                continue
            assert prefix in ENDPOINT_FOR, f"{values['function_name']} calls {action}: map it to an endpoint"
            called.setdefault(ENDPOINT_FOR[prefix], set()).add(str(values["function_name"]))
    planned = {
        re.sub(r"^com\.amazonaws\.[a-z0-9-]+\.", "", str(values["service_name"]))
        for _address, values in plan.resources("aws_vpc_endpoint")
        if values.get("vpc_endpoint_type") == "Interface"
    }
    missing = sorted(set(called) - planned)
    unused = sorted(planned - set(called))
    assert not missing, f"called without an endpoint (times out without NAT): {missing} by {called}"
    assert not unused, f"interface endpoints no function calls (cost per AZ): {unused}"
