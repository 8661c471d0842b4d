"""``ops redrive --mode native``: the SQS message-move task (StartMessageMoveTask) moves the DLQ back.

moto does not implement message-move tasks (its lane proves the loop mode, flow 4); LocalStack does,
so this runs on the LocalStack lane against the deployed DLQ and failed-transactions queue.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from devkit.demo import Platform, wait_for
from tests.e2e.flows import OpsCli

COUNT = 7


def _retry_mapping(platform: Platform) -> dict[str, Any]:
    mappings = platform.client("lambda").list_event_source_mappings(
        FunctionName=platform.outputs["function_names"]["retry"]
    )["EventSourceMappings"]
    [mapping] = [m for m in mappings if m["EventSourceArn"] == platform.outputs["failed_queue_arn"]]
    return dict(mapping)


def _take(platform: Platform, queue_url: str, marker: str, want: int, timeout: float) -> list[str]:
    """Receive and delete the messages carrying ``marker`` until ``want`` arrived (bounded)."""
    sqs = platform.client("sqs")
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
        ).get("Messages", []):
            if marker in message["Body"]:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.mark.not_emulated(
    reason="moto does not implement SQS StartMessageMoveTask/ListMessageMoveTasks", backends=("moto",)
)
def test_native_redrive_moves_the_dlq_back_with_a_message_move_task(
    platform: Platform, ops_cli: OpsCli
) -> None:
    sqs = platform.client("sqs")
    dlq, failed = platform.outputs["dlq_url"], platform.outputs["failed_queue_url"]
    lam = platform.client("lambda")
    mapping = _retry_mapping(platform)
    # The retry consumer would take the moved messages off failed-transactions before we look.
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        wait_for(
            lambda: _retry_mapping(platform)["State"] == "Disabled", timeout=30, what="the mapping to stop"
        )
        marker = f"native-{uuid.uuid4().hex[:8]}"
        sent = sorted(
            json.dumps({"transaction_id": f"txn_{marker}_{i}", "marker": marker}) for i in range(COUNT)
        )
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(sent)]
        assert not sqs.send_message_batch(QueueUrl=dlq, Entries=entries).get("Failed")
        wait_for(lambda: platform.queue_counts(dlq)[0] >= COUNT, timeout=30, what="the messages in the DLQ")

        # A message-move task cannot count redrives per message: it runs only without a limit.
        result = ops_cli("redrive", "--mode", "native", "--max-redrives", "0", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["mode"] == "native", report
        assert report["moved"] >= COUNT, report
        assert not report.get("fallback_reason"), report

        assert sorted(_take(platform, failed, marker, COUNT, timeout=60)) == sent
        assert not _take(platform, dlq, marker, 1, timeout=2)
        tasks = sqs.list_message_move_tasks(SourceArn=platform.outputs["dlq_arn"], MaxResults=1)["Results"]
        assert tasks and tasks[0]["Status"] == "COMPLETED", tasks
        assert tasks[0]["DestinationArn"] == platform.outputs["failed_queue_arn"]
    finally:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
