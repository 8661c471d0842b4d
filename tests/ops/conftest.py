"""Fixtures for the ops CLI and core tests: a moto (in-process) platform with real tables,
bucket and queues named as docs/interfaces.md says, plus helpers to seed and observe it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto.core.botocore_stubber import BotocoreStubber
from ops_testkit import (
    ACCOUNT,
    BUCKET,
    DLQ,
    FAILED_QUEUE,
    REGION,
    SHARDS,
    SUFFIX,
    TABLE,
    Platform,
    create_transactions_table,
)

from ops.cli import context as cli_context
from ops.cli.main import cli
from tests.support.inprocess import in_process_aws

_MOTO_LOCK = threading.RLock()


def _atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply each emulated request atomically, as AWS does. moto in-process is not thread-safe:
    parallel scan segments or two concurrent runs can otherwise see a half-applied request
    (RuntimeError "dictionary changed size during iteration", or an update that re-creates an
    item a parallel delete just removed)."""
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with _MOTO_LOCK:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "OPS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("COLUMNS", "160")
    _atomic_requests(monkeypatch)
    with in_process_aws():
        yield


@pytest.fixture
def platform(aws_env: None, tmp_path: Path) -> Platform:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    create_transactions_table(dynamodb)
    s3.create_bucket(Bucket=BUCKET)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
    dlq_arn = dlq_attrs["QueueArn"]
    failed_url = sqs.create_queue(
        QueueName=FAILED_QUEUE,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    fifo_dlq_url = sqs.create_queue(QueueName=f"audit-dlq-{SUFFIX}.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    fifo_dlq_arn = sqs.get_queue_attributes(QueueUrl=fifo_dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    fifo_source_url = sqs.create_queue(
        QueueName=f"audit-{SUFFIX}.fifo",
        Attributes={
            "FifoQueue": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": fifo_dlq_arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    outputs = {
        "region": {"value": REGION, "type": "string", "sensitive": False},
        "environment_suffix": {"value": SUFFIX, "type": "string", "sensitive": False},
        "account_id": {"value": ACCOUNT, "type": "string", "sensitive": False},
        "transactions_table_name": {"value": TABLE, "type": "string", "sensitive": False},
        "by_day_index_name": {"value": "by-day", "type": "string", "sensitive": False},
        "day_shard_count": {"value": SHARDS, "type": "number", "sensitive": False},
        "archive_bucket_name": {"value": BUCKET, "type": "string", "sensitive": False},
        "dlq_url": {"value": dlq_url, "type": "string", "sensitive": False},
        "failed_queue_url": {"value": failed_url, "type": "string", "sensitive": False},
        "oncall_links": {
            "value": {
                "dashboard": "https://us-east-1.console.aws.amazon.com/cloudwatch/home#dashboards:name=payment-test",
                "alarms": {
                    "payment-intake-errors-test": "https://console.aws.amazon.com/cloudwatch/alarm/intake",
                    "payment-dlq-messages-test": "https://console.aws.amazon.com/cloudwatch/alarm/dlq",
                },
                "logs": {"/aws/lambda/payment-intake-test": "https://console.aws.amazon.com/logs/intake"},
                "queues": {"dlq": "https://console.aws.amazon.com/sqs/dlq"},
                "workflow": {"state_machine": "https://console.aws.amazon.com/states/workflow"},
            },
            "type": "object",
            "sensitive": False,
        },
    }
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    return Platform(
        dynamodb=dynamodb,
        s3=s3,
        sqs=sqs,
        outputs_file=outputs_file,
        dlq_url=dlq_url,
        failed_url=failed_url,
        fifo_dlq_url=fifo_dlq_url,
        fifo_source_url=fifo_source_url,
    )


@pytest.fixture
def run(platform: Platform) -> Callable[..., Result]:
    """Invoke ``ops`` with the platform's outputs file, returning click's Result."""

    def invoke(
        *args: str, env: dict[str, str] | None = None, outputs: bool = True, input: str | None = None
    ) -> Result:
        argv = (["--outputs-file", str(platform.outputs_file)] if outputs else []) + list(args)
        return CliRunner().invoke(cli, argv, env=env, input=input, catch_exceptions=False)

    return invoke


class ClientHooks:
    """Registers botocore event handlers on every client the CLI creates from now on
    (failure injection, call counting); ``clear()`` stops it, e.g. before a clean rerun."""

    def __init__(self) -> None:
        self.registrations: list[Callable[[Any], None]] = []

    def __call__(self, register: Callable[[Any], None]) -> None:
        self.registrations.append(register)

    def clear(self) -> None:
        self.registrations.clear()


@pytest.fixture
def client_hooks(monkeypatch: pytest.MonkeyPatch) -> ClientHooks:
    hooks = ClientHooks()
    original = cli_context.OpsContext.client

    def client(self: cli_context.OpsContext, service: str) -> Any:
        created = service not in self._clients
        result = original(self, service)
        if created:
            for register in hooks.registrations:
                register(result)
        return result

    monkeypatch.setattr(cli_context.OpsContext, "client", client)
    return hooks


@pytest.fixture(autouse=True)
def _moto_step_functions_do_not_execute() -> Iterator[None]:
    """The ops tests script execution outcomes with moto's history mock (``SF_EXECUTION_HISTORY_TYPE``),
    which works only while moto does not run definitions. The embedded emulator switches execution on
    process-wide (``configure_moto``) when an earlier test in the same session started it: switch it
    off here and restore it afterwards."""
    from moto.core.config import default_user_config

    settings = default_user_config["stepfunctions"]
    previous = settings.get("execute_state_machine")
    settings["execute_state_machine"] = False
    try:
        yield
    finally:
        settings["execute_state_machine"] = previous
