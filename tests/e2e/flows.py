"""Shared pieces of the end-to-end flows: the ledger of created transactions, taps on the platform's
topics and audit stream, and the ``ops`` CLI bound to the deployment (``Deployment`` itself is the
session's one stack, tests/support/stack.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from click.testing import CliRunner, Result

from devkit.demo import Platform


@dataclass
class Ledger:
    """Every transaction the session created through the API: id → what the flow expects of it."""

    expected: dict[str, str] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)

    def add(self, transaction_id: str, expectation: str, *, tier: str = "partner") -> str:
        self.expected[transaction_id] = expectation
        self.tiers[transaction_id] = tier
        return transaction_id


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
