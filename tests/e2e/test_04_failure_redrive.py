"""Flow 4: settlement fails → workflow retries → failed-transactions → retry consumer → DLQ → redrive."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ops.demo import UNREACHABLE_PROCESSOR, Platform, wait_for
from tests.e2e.flows import Ledger, OpsCli, TopicTap


def _retry_mapping(platform: Platform) -> dict[str, Any]:
    mappings = platform.client("lambda").list_event_source_mappings(
        FunctionName=platform.outputs["function_names"]["retry"]
    )["EventSourceMappings"]
    [mapping] = [m for m in mappings if m["EventSourceArn"] == platform.outputs["failed_queue_arn"]]
    return dict(mapping)


def test_failures_reach_the_dlq_and_complete_after_redrive(
    platform: Platform, ledger: Ledger, taps: dict[str, TopicTap], ops_cli: OpsCli
) -> None:
    mapping = _retry_mapping(platform)
    assert mapping["BatchSize"] == 10 and "ReportBatchItemFailures" in mapping.get(
        "FunctionResponseTypes", []
    )
    original = platform.processor_endpoint()
    platform.set_processor_endpoint(UNREACHABLE_PROCESSOR)
    cleanup = contextlib.ExitStack()
    cleanup.enter_context(platform.fast_retries())
    try:
        failing = []
        for amount in ("31.00", "32.00"):
            response = platform.create(Platform.payment(amount, "USD"))
            assert response.status == 202, response.body
            failing.append(ledger.add(response.json["transaction_id"], "COMPLETED after redrive"))

        for transaction_id in failing:
            execution = platform.wait_for_execution(transaction_id, timeout=120)
            assert execution["status"] == "FAILED", execution
            history = platform.client("stepfunctions").get_execution_history(
                executionArn=execution["executionArn"], maxResults=1000
            )["events"]
            # Settle was retried (3 retries) before the Catch recorded the failure.
            assert sum(e["type"] == "TaskFailed" for e in history) >= 4
            failed_messages = taps["failed"].messages(transaction_id)
            assert any(m["message"]["status"] == "FAILED" for m in failed_messages), failed_messages

        # The retry consumer keeps failing while the processor is down: 3 receives, then the DLQ.
        wait_for(
            lambda: set(failing) <= platform.dlq_transaction_ids(),
            timeout=180,
            interval=1,
            what="both failures in the DLQ",
        )
        for transaction_id in failing:
            item = platform.item(transaction_id)
            assert item is not None and item["status"] == "FAILED" and item.get("failure"), item
        assert platform.queue_counts(platform.outputs["failed_queue_url"]) == (0, 0)

        # Pause the consumer, redrive with the CLI (loop mode: moto has no message-move tasks).
        lam = platform.client("lambda")
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        wait_for(
            lambda: _retry_mapping(platform)["State"] == "Disabled", timeout=30, what="the mapping to stop"
        )
        result = ops_cli("redrive", "--mode", "loop", "--wait-seconds", "0", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert json.dumps(report).count("failed-transactions") >= 1
        assert platform.dlq_transaction_ids().isdisjoint(failing)
        wait_for(
            lambda: sum(platform.queue_counts(platform.outputs["failed_queue_url"])) == len(failing),
            timeout=30,
            what="the redriven messages in failed-transactions",
        )
    finally:
        cleanup.close()
        platform.set_processor_endpoint(original)
        platform.client("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)

    for transaction_id in failing:
        final = platform.wait_for_status(transaction_id, {"COMPLETED"}, timeout=120)
        assert final["status"] == "COMPLETED"
        audit = [entry["to_status"] for entry in platform.audit(transaction_id)]
        # FAILED → SETTLING is the retry consumer's new attempt, audited like any transition.
        assert audit[-3:] == ["FAILED", "SETTLING", "COMPLETED"], audit
    wait_for(
        lambda: platform.queue_counts(platform.outputs["failed_queue_url"]) == (0, 0), timeout=30, what="ack"
    )


def test_every_created_transaction_is_terminal(platform: Platform, ledger: Ledger) -> None:
    assert ledger.expected, "earlier flows created transactions"
    for transaction_id, expectation in ledger.expected.items():
        status = platform.wait_for_status(
            transaction_id, {"COMPLETED", "REJECTED"}, timeout=60, tier=ledger.tiers[transaction_id]
        )["status"]
        assert expectation.startswith(status), (transaction_id, status, expectation)
