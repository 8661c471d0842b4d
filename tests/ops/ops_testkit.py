"""Helpers shared by the ops tests and fixtures (unique module name: the tests tree has no packages)."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments.shards import day_shard as _day_shard

from tests.support import tables

REGION = "us-east-1"
SUFFIX = "test"
ACCOUNT = "123456789012"
TABLE = f"payment-transactions-{SUFFIX}"
BUCKET = f"payment-archive-{SUFFIX}-{ACCOUNT}"
FAILED_QUEUE = f"failed-transactions-{SUFFIX}"
DLQ = f"failed-transactions-dlq-{SUFFIX}"
SHARDS = 16


def day_shard(transaction_id: str, timestamp_ms: int, shards: int = SHARDS) -> str:
    return _day_shard(transaction_id, timestamp_ms, shards)


def epoch_ms(day: dt.date, hour: int = 12, minute: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC).timestamp() * 1000)


def txn_item(
    n: int,
    timestamp_ms: int,
    *,
    amount_minor: int = 1000,
    currency: str = "USD",
    status: str = "COMPLETED",
    merchant: str = "m_1",
    shards: int = SHARDS,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A transaction item in DynamoDB JSON, shaped like the intake writes it."""
    transaction_id = f"txn_{timestamp_ms:013d}{n:013d}"
    item: dict[str, Any] = {
        "transaction_id": {"S": transaction_id},
        "timestamp": {"N": str(timestamp_ms)},
        "day_shard": {"S": day_shard(transaction_id, timestamp_ms, shards)},
        "status": {"S": status},
        "merchant_id": {"S": merchant},
        "customer_id": {"S": f"c_{n % 7}"},
        "amount_minor": {"N": str(amount_minor)},
        "currency": {"S": currency},
        "payment_method_type": {"S": "card"},
        "payment_method_token": {"S": f"tok_{n}"},
        "version": {"N": "1"},
    }
    item.update(extra or {})
    return item


@dataclass
class Platform:
    dynamodb: Any
    s3: Any
    sqs: Any
    outputs_file: Path
    dlq_url: str
    failed_url: str
    fifo_dlq_url: str
    fifo_source_url: str
    calls: Counter[str] = field(default_factory=Counter)

    def put(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
            response = self.dynamodb.batch_write_item(RequestItems={TABLE: batch})
            assert not response.get("UnprocessedItems")

    def all_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": TABLE}
        for _ in range(10_000):
            page = self.dynamodb.scan(**request)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        raise AssertionError("scan did not finish")

    def s3_keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def s3_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def queue_counts(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, url: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """Receive and delete everything visible in ``url`` (bounded)."""
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                return out
            out.extend(messages)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return out


def create_transactions_table(dynamodb: Any, name: str = TABLE) -> None:
    tables.create_table(dynamodb, tables.TRANSACTIONS, name)


class Interrupt(RuntimeError):
    """Injected mid-run failure (stands in for a crash or a killed process)."""


def fail_after(operation: str, calls: int) -> Callable[[Any], None]:
    """A client hook that lets ``calls`` calls of ``operation`` through, then raises ``Interrupt``."""
    seen = {"n": 0}

    def register(client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()

        def before_call(**_: Any) -> None:
            seen["n"] += 1
            if seen["n"] > calls:
                raise Interrupt(f"injected failure on {operation} call {seen['n']}")

        client.meta.events.register(f"before-call.{service}.{operation}", before_call)

    return register


def shuffled(items: list[Any], seed: int = 7) -> list[Any]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def cutoff_ms_90d() -> int:
    """Epoch ms of the 90-day cleanup cutoff today (00:00 UTC, 90 days ago)."""
    today = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=90)
    return int(dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC).timestamp() * 1000)


def add_outputs(platform: Platform, **values: Any) -> None:
    """Add ``name=value`` Terraform outputs to the platform's outputs file."""
    outputs = json.loads(platform.outputs_file.read_text())
    for name, value in values.items():
        kind = "object" if isinstance(value, dict) else "string"
        outputs[name] = {"value": value, "type": kind, "sensitive": False}
    platform.outputs_file.write_text(json.dumps(outputs))


def create_workflow(sfn: Any) -> str:
    """A one-state stand-in for the platform's state machine, named as Terraform names it."""
    definition = {"StartAt": "Validate", "States": {"Validate": {"Type": "Pass", "End": True}}}
    return str(
        sfn.create_state_machine(
            name=f"payment-workflow-{SUFFIX}",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/payment-workflow-{SUFFIX}",
        )["stateMachineArn"]
    )
