"""Flow 13: the on-call commands on the deployed platform. ``ops trace`` tells the story of a
completed, a rejected and a failed-then-redriven payment (made by flows 1, 2 and 4); ``ops status``
sees the DLQ fill and empty again."""

from __future__ import annotations

import json
from typing import Any

from devkit.demo import Platform, wait_for
from tests.e2e.flows import Ledger, OpsCli


def _one(ledger: Ledger, expectation: str) -> str:
    found = [txn for txn, expected in ledger.expected.items() if expected == expectation]
    assert found, f"an earlier flow created a payment expected to end {expectation!r}"
    return found[0]


def _trace(ops_cli: OpsCli, transaction_id: str) -> dict[str, Any]:
    result = ops_cli("trace", transaction_id, "--json", "--peek-max", "1")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["transaction_id"] == transaction_id
    assert data["transaction"] is not None and data["executions"], data
    assert data["links"]["execution"] and transaction_id in data["links"]["logs_insights"]
    return data


def _transitions(data: dict[str, Any]) -> list[str]:
    return [event["to_status"] for event in data["audit"]]


def test_trace_tells_the_story_of_a_completed_payment(ledger: Ledger, ops_cli: OpsCli) -> None:
    txn = _one(ledger, "COMPLETED")
    data = _trace(ops_cli, txn)
    assert data["transaction"]["status"] == "COMPLETED"
    assert _transitions(data)[0] == "PENDING" and _transitions(data)[-1] == "COMPLETED"
    assert [e["status"] for e in data["executions"]] == ["SUCCEEDED"]
    # Settlement archived it: the object is named after the payment.
    assert data["archive"] and data["archive"]["kind"] == "settlement"
    assert data["archive"]["object"].endswith(f"/{txn}.json")
    assert all(not q["present"] for q in data["queues"])


def test_trace_keeps_a_rejection_apart_from_a_failure(ledger: Ledger, ops_cli: OpsCli) -> None:
    data = _trace(ops_cli, _one(ledger, "REJECTED"))
    assert data["transaction"]["status"] == "REJECTED"
    assert "SETTLING" not in _transitions(data) and "FAILED" not in _transitions(data)
    assert data["archive"] is None  # nothing was charged, nothing archived


def test_trace_shows_the_failure_and_the_redriven_attempt(ledger: Ledger, ops_cli: OpsCli) -> None:
    data = _trace(ops_cli, _one(ledger, "COMPLETED after redrive"))
    assert data["transaction"]["status"] == "COMPLETED"
    transitions = _transitions(data)
    assert transitions[-3:] == ["FAILED", "SETTLING", "COMPLETED"], transitions
    assert any(e["status"] == "FAILED" for e in data["executions"]), data["executions"]
    failed = next(e for e in data["executions"] if e["status"] == "FAILED")
    assert failed["error"], failed  # the failed state and its (redacted) error
    assert all(not q["present"] for q in data["queues"])  # redriven and consumed


def _status(ops_cli: OpsCli) -> tuple[int, dict[str, Any]]:
    result = ops_cli("status", "--json")
    assert result.exit_code in (0, 1, 2, 3), result.output  # the Nagios plugin convention
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["exit_code"] == result.exit_code
    return result.exit_code, data


def _depth(data: dict[str, Any], queue: str) -> int:
    return int(next(q for q in data["queues"] if q["queue"] == queue)["visible"])


def _redrive_the_dlq(ops_cli: OpsCli) -> None:
    """Start from an empty DLQ as on-call would: redrive what earlier flows left there (the demo's
    payment made while the processor was down, when its flow ran on this worker and no later flow
    redrove it). The test must not rely on which flows ran before it on its worker."""
    if _depth(_status(ops_cli)[1], "dlq"):
        result = ops_cli("redrive", "--mode", "loop", "--wait-seconds", "0", "--json")
        assert result.exit_code == 0, result.output
    wait_for(lambda: _depth(_status(ops_cli)[1], "dlq") == 0, timeout=60, what="the DLQ redriven")


def test_status_sees_the_dlq_fill_and_empty(platform: Platform, ops_cli: OpsCli) -> None:
    _redrive_the_dlq(ops_cli)
    _, before = _status(ops_cli)
    assert _depth(before, "dlq") == 0, before

    # A message lands in the DLQ as the retry consumer's third failed receive would put it there.
    sqs = platform.client("sqs")
    dlq = platform.outputs["dlq_url"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"transaction_id": "txn_status_probe"}))
    try:
        wait_for(lambda: _depth(_status(ops_cli)[1], "dlq") == 1, timeout=30, what="the DLQ in ops status")
        code, after = _status(ops_cli)
        assert code == 2 and after["status"] == "CRITICAL", after
        assert after["checks"]["dlq"] == "CRITICAL", after
        assert any("dlq" in reason.lower() for reason in after["reasons"]), after["reasons"]
    finally:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            if "txn_status_probe" in message["Body"]:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    wait_for(lambda: _depth(_status(ops_cli)[1], "dlq") == 0, timeout=30, what="the DLQ empty again")
