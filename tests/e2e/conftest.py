"""End-to-end fixtures: ONE terraform apply per session, the platform client, taps and the ops CLI.

``E2E_BACKEND=moto`` (default) applies to the embedded emulator, whose Lambda runtime hook runs the
deployed zip; ``E2E_BACKEND=localstack`` applies the same root module to LocalStack and talks HTTP to
its API Gateway. Nothing below depends on which one runs, except the checks that need the embedded
runtime's captured output (they also read CloudWatch Logs, which both have).

The session ends with ``terraform destroy`` and a sweep asserting that no resource carrying the
session's suffix is left in the emulator.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ops.build import BuildResult
from ops.demo import Platform
from ops.emulator import lambda_runtime
from ops.local import local_tf_vars
from ops.terraform import Terraform, TerraformError, prepare_workdir, terraform_env

APPLY_TIMEOUT_S = 1200.0
APPLY_ATTEMPTS = 3
TRANSIENT_ERRORS = ("use of closed network connection", "connection reset by peer", "EOF", "timeout awaiting")


_HISTORY_MARK = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def _remember_invocations(request: pytest.FixtureRequest) -> None:
    runtime = lambda_runtime.installed_runtime()
    request.node.stash[_HISTORY_MARK] = len(runtime.history()) if runtime else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the Lambda invocations that failed during the test (moto backend)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    runtime = lambda_runtime.installed_runtime()
    if report.when != "call" or not report.failed or runtime is None:
        return
    failed = [i for i in runtime.history()[item.stash.get(_HISTORY_MARK, 0) :] if i.function_error]
    if failed:
        text = "\n\n".join(
            f"{i.function_name} {i.request_id}: {i.payload.decode()[:1500]}\n{i.output[-3000:]}"
            for i in failed[-5:]
        )
        report.sections.append(("failed Lambda invocations", text))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass
class Deployment:
    suffix: str
    workdir: Path
    outputs: dict[str, Any]
    env: dict[str, str]
    apply_seconds: float


@dataclass
class Ledger:
    """Every transaction the session created through the API: id → what the flow expects of it."""

    expected: dict[str, str] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)

    def add(self, transaction_id: str, expectation: str, *, tier: str = "partner") -> str:
        self.expected[transaction_id] = expectation
        self.tiers[transaction_id] = tier
        return transaction_id


def _leftovers(client: Any, suffix: str) -> dict[str, list[str]]:
    """Names containing the suffix, per service, that are still in the emulator after destroy."""

    def named(values: list[str]) -> list[str]:
        return sorted(v for v in values if suffix in v)

    found: dict[str, list[str]] = {}
    probes = {
        "lambda": lambda: [f["FunctionName"] for f in client("lambda").list_functions()["Functions"]],
        "dynamodb": lambda: client("dynamodb").list_tables()["TableNames"],
        "sqs": lambda: client("sqs").list_queues().get("QueueUrls", []),
        "sns": lambda: [t["TopicArn"] for t in client("sns").list_topics()["Topics"]],
        "s3": lambda: [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
        "stepfunctions": lambda: [
            m["name"] for m in client("stepfunctions").list_state_machines()["stateMachines"]
        ],
        "apigateway": lambda: [a["name"] for a in client("apigateway").get_rest_apis()["items"]],
        "iam": lambda: [r["RoleName"] for r in client("iam").list_roles()["Roles"]],
        "ssm": lambda: [p["Name"] for p in client("ssm").describe_parameters()["Parameters"]],
        "cloudwatch": lambda: [
            a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]
        ],
        "scheduler": lambda: [s["Name"] for s in client("scheduler").list_schedules()["Schedules"]],
        "kms-aliases": lambda: [a["AliasName"] for a in client("kms").list_aliases()["Aliases"]],
        "logs": lambda: [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]],
    }
    for service, probe in probes.items():
        names = named(probe())
        if names:
            found[service] = names
    return found


@pytest.fixture(scope="session")
def deployment(
    emulator: Any, lambda_package: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Apply the root module once for the session; destroy it and sweep for leftovers at the end."""
    suffix = os.environ.get("E2E_SUFFIX") or f"e2e{uuid.uuid4().hex[:5]}"
    workdir = prepare_workdir(
        tmp_path_factory.mktemp("stack"), emulator.endpoint_url, package_path=lambda_package.path
    )
    tf = Terraform(
        workdir, env=terraform_env(), timeout=APPLY_TIMEOUT_S, log_path=workdir.parent / "terraform.log"
    )
    tf_vars = local_tf_vars(suffix)
    started = time.monotonic()
    try:
        tf.init_dir()
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                tf.apply_vars(tf_vars)
                break
            except TerraformError as exc:
                # The local provider runs with max_retries = 1: a dropped connection to the (loaded)
                # emulator fails the run. Apply converges, so another pass finishes the job.
                if attempt == APPLY_ATTEMPTS or not any(m in str(exc) for m in TRANSIENT_ERRORS):
                    raise
    except TerraformError as exc:
        try:
            tf.destroy_vars(tf_vars)
        finally:
            pytest.fail(
                f"terraform apply failed (log: {workdir.parent / 'terraform.log'}):\n{exc}", pytrace=False
            )
    deployment = Deployment(
        suffix=suffix,
        workdir=workdir,
        outputs=tf.outputs(),
        env=dict(emulator.env()),
        apply_seconds=time.monotonic() - started,
    )
    yield deployment
    tf.destroy_vars(tf_vars)
    left = _leftovers(emulator.client, suffix)
    assert not left, f"resources of suffix {suffix} left after destroy: {json.dumps(left, indent=1)}"


@pytest.fixture(scope="session")
def platform(deployment: Deployment) -> Platform:
    return Platform(deployment.outputs, deployment.env)


@pytest.fixture(scope="session")
def outputs(deployment: Deployment) -> dict[str, Any]:
    return deployment.outputs


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="session")
def runtime() -> lambda_runtime.LambdaRuntime | None:
    """The embedded Lambda runtime (moto backend) — it keeps every handler's stdout/stderr."""
    return lambda_runtime.installed_runtime()


class TopicTap:
    """An SQS queue we create and subscribe to a platform topic: what the topic delivered."""

    def __init__(self, platform: Platform, topic_arn: str, name: str) -> None:
        self.sqs = platform.client("sqs")
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sqs.set_queue_attributes(
            QueueUrl=self.url,
            Attributes={
                "Policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": arn,
                                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                            }
                        ],
                    }
                )
            },
        )
        self.sns = platform.client("sns")
        self.subscription = self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)[
            "SubscriptionArn"
        ]
        self.by_transaction: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def drain(self) -> None:
        for _ in range(50):
            batch = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return
            for message in batch:
                envelope = json.loads(message["Body"])
                body = json.loads(envelope["Message"])
                attributes = {k: v.get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()}
                self.by_transaction[str(body.get("transaction_id"))].append(
                    {"message": body, "attributes": attributes, "raw": envelope["Message"]}
                )
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def messages(self, transaction_id: str) -> list[dict[str, Any]]:
        self.drain()
        return self.by_transaction.get(transaction_id, [])

    def close(self) -> None:
        self.sns.unsubscribe(SubscriptionArn=self.subscription)
        self.sqs.delete_queue(QueueUrl=self.url)


@pytest.fixture(scope="session")
def taps(platform: Platform, deployment: Deployment) -> Iterator[dict[str, TopicTap]]:
    created = {
        kind: TopicTap(platform, platform.outputs[f"{kind}_topic_arn"], f"e2e-tap-{kind}-{deployment.suffix}")
        for kind in ("events", "failed", "alerts")
    }
    yield created
    for tap in created.values():
        tap.close()


class AuditStream:
    """Consumes the FIFO audit stream once and keeps every message, grouped by transaction in order."""

    def __init__(self, platform: Platform) -> None:
        self.sqs = platform.client("sqs")
        self.url = platform.outputs["audit_queue_url"]
        self.by_transaction: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def drain(self) -> None:
        for _ in range(200):
            batch = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return
            for message in batch:
                body = json.loads(message["Body"])
                assert message["Attributes"]["MessageGroupId"] == body["transaction_id"]
                self.by_transaction[body["transaction_id"]].append(body)
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )

    def transitions(self, transaction_id: str) -> list[dict[str, Any]]:
        self.drain()
        return self.by_transaction.get(transaction_id, [])


@pytest.fixture(scope="session")
def audit_stream(platform: Platform) -> AuditStream:
    return AuditStream(platform)


@dataclass
class OpsCli:
    """The ``ops`` CLI in-process (CliRunner) against the deployment."""

    env: dict[str, str]
    args: list[str]

    def __call__(self, *argv: str) -> Result:
        from ops.cli.main import cli

        return CliRunner().invoke(cli, [*argv, *self.args], env=self.env, catch_exceptions=False)

    def json(self, *argv: str) -> Any:
        result = self(*argv, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture(scope="session")
def ops_cli(platform: Platform, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> OpsCli:
    outputs_file = platform.write_outputs_file(tmp_path_factory.mktemp("ops"))
    return OpsCli(env=deployment.env, args=platform.cli_args(outputs_file))
