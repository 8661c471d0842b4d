"""Flow 1: a payment accepted through the API is validated, fraud-checked, settled and notified."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from devkit.demo import Platform
from tests.e2e.flows import AuditStream, Ledger, TopicTap


def test_payment_completes_end_to_end(
    platform: Platform,
    ledger: Ledger,
    taps: dict[str, TopicTap],
    audit_stream: AuditStream,
    outputs: dict[str, Any],
) -> None:
    body = Platform.payment("100.50", "USD", reference="order-1001", metadata={"cart": "c-77"})
    response = platform.create(body, idempotency_key="e2e-happy-1")
    assert response.status == 202, response.body
    created = response.json
    transaction_id = ledger.add(created["transaction_id"], "COMPLETED")
    assert transaction_id.startswith("txn_") and len(transaction_id) == 30
    assert created["status"] == "PENDING"
    assert transaction_id in json.dumps(created)  # the status URL names the transaction
    assert response.header("Access-Control-Allow-Origin")
    assert response.header("x-amzn-RequestId")

    final = platform.wait_for_status(transaction_id, {"COMPLETED", "REJECTED", "FAILED"})
    assert final["status"] == "COMPLETED", final
    assert final["amount"] and final["currency"] == "USD"
    assert body["payment_method"]["token"] not in json.dumps(final)
    by_status_route = platform.get_transaction(transaction_id, route="status")
    assert by_status_route.status == 200 and by_status_route.json["status"] == "COMPLETED"

    execution = platform.wait_for_execution(transaction_id)
    assert execution["status"] == "SUCCEEDED"

    item = platform.item(transaction_id)
    assert item is not None and item["amount_minor"] == 10050 and item["status"] == "COMPLETED"
    assert item["day_shard"].startswith(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d#"))

    # Archive: transactions/YYYY/MM/DD/<id>.json, SSE-KMS with the platform's data key.
    s3 = platform.client("s3")
    bucket = outputs["archive_bucket_name"]
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="transactions/").get("Contents", [])
        if o["Key"].endswith(f"/{transaction_id}.json")
    ]
    assert len(keys) == 1, keys
    day = dt.datetime.fromtimestamp(int(item["timestamp"]) / 1000, dt.UTC)
    assert keys[0] == f"transactions/{day:%Y/%m/%d}/{transaction_id}.json"
    head = s3.head_object(Bucket=bucket, Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head.get("SSEKMSKeyId", "").split("/")[-1] in outputs["kms_key_arns"]["data"]
    archived = json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    assert archived["transaction_id"] == transaction_id and archived["status"] == "COMPLETED"
    assert body["payment_method"]["token"] not in json.dumps(archived)

    # Events topic: one COMPLETED notification with the documented attributes, never the token.
    events = taps["events"].messages(transaction_id)
    assert len(events) == 1, events
    assert events[0]["message"]["status"] == "COMPLETED"
    assert events[0]["attributes"]["status"] == "COMPLETED" and events[0]["attributes"]["currency"] == "USD"
    assert body["payment_method"]["token"] not in events[0]["raw"]
    assert taps["failed"].messages(transaction_id) == []

    # Audit: one entry per transition, in order, in the table and on the FIFO stream alike.
    audit = platform.audit(transaction_id)
    to_states = [entry["to_status"] for entry in audit]
    assert to_states[-3:] == ["VALIDATING", "SETTLING", "COMPLETED"], to_states
    for before, after in itertools.pairwise(audit):
        assert after["from_status"] == before["to_status"]
    stream = audit_stream.transitions(transaction_id)
    assert [m["to_status"] for m in stream] == to_states
    assert all(m["transaction_id"] == transaction_id for m in stream)


def test_completed_payment_reaches_the_events_queue(
    platform: Platform, ledger: Ledger, outputs: dict[str, Any]
) -> None:
    """Payment events are for machines: payment-events (and payment-failed) deliver to the
    deployed events queue through its own subscription, queue policy and key, in the SNS
    envelope, without the payment token (docs/interfaces.md, "Queues and topics")."""
    from devkit.demo import wait_for

    completed = {tid for tid, expectation in ledger.expected.items() if expectation == "COMPLETED"}
    assert completed, "the happy path completed a payment first"
    sqs = platform.client("sqs")
    url = outputs["events_queue_url"]
    seen: dict[str, dict[str, Any]] = {}

    def receive() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            envelope = json.loads(message["Body"])
            event = json.loads(envelope["Message"])
            seen[str(event.get("transaction_id"))] = {"envelope": envelope, "event": event}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bool(completed & set(seen))

    wait_for(receive, timeout=60, what="a completed payment's event on the events queue")
    transaction_id = sorted(completed & set(seen))[0]
    delivered = seen[transaction_id]
    assert delivered["envelope"]["TopicArn"] == outputs["events_topic_arn"]
    assert delivered["event"]["status"] == "COMPLETED"
    assert "tok_" not in delivered["envelope"]["Message"]
