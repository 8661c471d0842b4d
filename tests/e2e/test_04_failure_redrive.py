"""Flow 4: settlement fails → workflow retries → failed-transactions → retry consumer → DLQ → redrive;
and the settlement protocol against a processor with real semantics (the HTTPS simulator)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from devkit.demo import UNREACHABLE_PROCESSOR, Platform, wait_for
from devkit.emulator import lambda_runtime
from devkit.emulator.processor import serve
from tests.e2e.flows import Ledger, OpsCli, TopicTap

# The functions that call the processor.
PROCESSOR_CALLERS = ("settlement", "retry")


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
    budget = platform.client("lambda").get_function_configuration(
        FunctionName=platform.outputs["function_names"]["retry"]
    )["Environment"]["Variables"]["MAX_SETTLEMENT_ATTEMPTS"]
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

        # The retry consumer keeps failing while the processor is down: 5 receives, then the DLQ.
        for item in platform.wait_dead_lettered(failing, timeout=300):  # five receives (maxReceiveCount 5)
            assert item.get("failure"), item
            # The retry budget outlasts one round of receives: a redrive can still settle it.
            assert int(item["attempts"]) < int(budget), (item["attempts"], budget)
            assert not item.get("parked") and not item.get("final"), item
        # A failed attempt that will be retried is not announced: no transaction.failed for them
        # (a merchant re-billing on it would charge the customer twice).
        for transaction_id in failing:
            assert taps["failed"].messages(transaction_id) == [], transaction_id

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
        # At least one message per failure; two where the emulator delivers Step Functions status
        # events to the safety-net rule as AWS does (LocalStack), which repeats RecordFailure's.
        assert report["moved"] >= len(failing), report
        wait_for(
            lambda: sum(platform.queue_counts(platform.outputs["failed_queue_url"])) == report["moved"],
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
        # One terminal event, and it is the completion: nothing on the failed topic before or after.
        assert taps["failed"].messages(transaction_id) == [], transaction_id
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


@contextlib.contextmanager
def _function_environment(
    platform: Platform, roles: tuple[str, ...], extra: Mapping[str, str]
) -> Iterator[None]:
    """Add variables to deployed functions' environments for the block (restored afterwards)."""
    lam = platform.client("lambda")
    saved: dict[str, dict[str, str]] = {}
    try:
        for role in roles:
            name = platform.outputs["function_names"][role]
            variables = dict(lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"])
            saved[name] = variables
            lam.update_function_configuration(
                FunctionName=name, Environment={"Variables": {**variables, **extra}}
            )
        yield
    finally:
        for name, variables in saved.items():
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})


def test_a_lost_answer_is_reconciled_by_lookup_against_the_https_processor(
    platform: Platform, ledger: Ledger, runtime: lambda_runtime.LambdaRuntime | None, emulator: Any
) -> None:
    """The processor charges and the connection drops before the answer: the deployed Settle looks
    the charge up by reference and completes; one charge, no second POST."""
    # LocalStack without Docker runs the handlers on this host too (devkit/emulator/localstack_executor.py).
    if runtime is None and type(emulator).__name__ != "HostLocalStack":
        pytest.skip("the deployed functions must run on this host to reach 127.0.0.1 (embedded runtime)")
    original = platform.processor_endpoint()
    with (
        serve() as simulator,
        _function_environment(platform, PROCESSOR_CALLERS, {"PROCESSOR_CA_BUNDLE": str(simulator.ca_bundle)}),
    ):
        platform.set_processor_endpoint(simulator.endpoint)
        try:
            simulator.ledger.inject("drop_after_charge")
            response = platform.create(Platform.payment("33.00", "USD"))
            assert response.status == 202, response.body
            transaction_id = ledger.add(response.json["transaction_id"], "COMPLETED")
            final = platform.wait_for_status(transaction_id, {"COMPLETED", "REJECTED", "FAILED"}, timeout=120)
        finally:
            platform.set_processor_endpoint(original)
        charges = simulator.ledger.charges_for(transaction_id)
        requests = [
            r["method"]
            for r in simulator.ledger.requests
            if transaction_id in r["target"] or transaction_id.encode() in r["body"]
        ]
    assert final["status"] == "COMPLETED", final
    assert len(charges) == 1
    assert final["processor_reference"] == charges[0].charge_id
    assert requests == ["POST", "GET"]  # the charge, then the lookup; never a second charge
    audit = [entry["to_status"] for entry in platform.audit(transaction_id)]
    assert audit == ["PENDING", "VALIDATING", "SETTLING", "COMPLETED"], audit


def test_the_sweeper_runs_with_its_role_and_finds_nothing_stuck(platform: Platform) -> None:
    """The scheduled sweeper (invoked as the schedule does): its role grants what its code calls."""
    response = platform.client("lambda").invoke(
        FunctionName=platform.outputs["function_names"]["sweeper"], Payload=b"{}"
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    assert payload["complete"] is True and payload["errors"] == 0
    assert payload["scanned_partitions"] >= 1
