"""LocalStack without Docker (``devkit/emulator/localstack.py``): what the host-mode pieces must provide.

Runs on the LocalStack lane only: the free services answer, DynamoDB is DynamoDB Local (it validates
like AWS), and Lambda code runs in a subprocess through the executor plugin, from the zip that was
deployed, with LocalStack's credentials and endpoint, its output landing in CloudWatch Logs.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import uuid
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devkit.demo import wait_for
from devkit.emulator import localstack as host
from devkit.emulator.endpoints import localstack_health
from tests.support.aws import create_service_role

pytestmark = pytest.mark.not_emulated(
    reason="checks LocalStack's own services and the host-mode executor", backends=("moto",)
)

HANDLER = """
import os

import boto3


def handler(event, context):
    print("running", context.function_name, context.aws_request_id)
    queues = boto3.client("sqs").list_queues(QueueNamePrefix="ls-probe-").get("QueueUrls", [])
    return {
        "event": event,
        "pid": os.getpid(),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "cwd_has_handler": os.path.isfile("probe.py"),
        "queues": queues,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""


def test_health_lists_the_free_services_the_module_needs(emulator: Any) -> None:
    services = localstack_health(emulator.endpoint_url)["services"]
    for service in host.SERVICES.split(","):
        assert services.get(service) in {"available", "running"}, (service, services.get(service))
    # The paid edition's services are absent: the module applies with enable_waf/xray off.
    assert "wafv2" not in services and "xray" not in services


def test_dynamodb_is_dynamodb_local_and_validates_like_aws(emulator: Any) -> None:
    ddb = emulator.client("dynamodb")
    key = {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    with pytest.raises(ClientError, match="between 3 and 255 characters"):
        ddb.create_table(TableName="ab", **key)
    name = f"ls-probe-{uuid.uuid4().hex[:6]}"
    ddb.create_table(TableName=name, **key)
    try:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        assert ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]["n"] == {
            "N": "1"
        }
    finally:
        ddb.delete_table(TableName=name)


def test_lambda_runs_the_zip_in_a_subprocess_with_localstack_credentials(emulator: Any) -> None:
    suffix = uuid.uuid4().hex[:6]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("probe.py", HANDLER)
    iam, lam, sqs = emulator.client("iam"), emulator.client("lambda"), emulator.client("sqs")
    role = create_service_role(iam, f"ls-probe-{suffix}")
    queue = sqs.create_queue(QueueName=f"ls-probe-{suffix}")["QueueUrl"]
    name = f"ls-probe-{suffix}"
    try:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="probe.handler",
            Code={"ZipFile": buf.getvalue()},
            Timeout=20,
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        response = lam.invoke(FunctionName=name, Payload=json.dumps({"probe": suffix}), LogType="Tail")
        assert "FunctionError" not in response, response["Payload"].read()
        result = json.loads(response["Payload"].read())
        assert result["event"] == {"probe": suffix}
        assert result["pid"] not in {os.getpid(), (host.read_state() or {}).get("pid")}
        # The handler called back into LocalStack with the credentials LocalStack gave it.
        assert result["endpoint"].startswith("http://127.0.0.1:")
        assert queue in result["queues"]
        assert result["cwd_has_handler"] and result["task_root"] != "/var/task"
        assert 0 < result["remaining_ms"] <= 20_000
        assert "running " + name in base64.b64decode(response["LogResult"]).decode()
        logs = emulator.client("logs")

        def logged() -> bool:
            # The function's log group is created with its first delivered batch, after the invoke
            # has answered (asynchronously, as on AWS): until then it does not exist.
            try:
                events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}").get("events", [])
            except logs.exceptions.ResourceNotFoundException:
                return False
            return any(f"running {name}" in e["message"] for e in events)

        wait_for(logged, timeout=30, interval=1, what="the handler's output in CloudWatch Logs")
    finally:
        for call in (
            lambda: lam.delete_function(FunctionName=name),
            lambda: sqs.delete_queue(QueueUrl=queue),
            lambda: iam.delete_role(RoleName=f"ls-probe-{suffix}"),
        ):
            with contextlib.suppress(ClientError):
                call()
