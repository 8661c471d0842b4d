"""Issue 21's defects, each a scripted schedule of the settlement model (tests/unit/model.py):
notices from committed state only, failing only what one owns, bounded terminal outcomes, and no
"transaction.failed" for an attempt that will be retried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from payments import recovery, steps
from payments.errors import ProcessorUnavailable
from payments.processor import OutcomeUnknown, Processor
from payments.settle import SettlementInProgress, charge_request, settle_step

from tests.unit import model
from tests.unit.awsenv import AwsEnv
from tests.unit.test_settlement_protocol import created, current, finish, spawn, step_until


@pytest.fixture
def platform(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[model.Platform]:
    with model.platform(aws, monkeypatch, 1_796_000_000_000) as built:
        yield built


def event_types(platform: model.Platform) -> list[str]:
    """Every outcome notification published, in publish order, across both topics."""
    found = [
        (envelope.get("Timestamp", ""), n, envelope["MessageAttributes"]["event_type"]["Value"])
        for role in ("events", "failed")
        for n, envelope in enumerate(platform.aws.notifications(role))
    ]
    return [kind for _, _, kind in sorted(found)]


def lease_expires(platform: model.Platform) -> None:
    platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000


# ---------------------------------------------------------------------------- defect 1 and 4


def test_record_failure_never_sends_a_failed_notice_after_the_payment_completed(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    error = {"Error": "ProcessorUnavailable"}
    record = spawn(platform, "RecordFailure", lambda: steps.failure_step(platform.services, txn, ts, error))
    step_until(platform, record, "sqs.send_message")  # FAILED committed, retry enqueued next
    platform.scheduler.step(record)  # the retry message is sent
    assert record.pending == "dynamodb.update_item"
    platform.scheduler.step(record)  # the enqueue leaves the outbox; the row read back is FAILED
    # RecordFailure is paused with FAILED in memory; the retry consumer completes the payment.
    platform.pull_failed_queue()
    retry = platform.deliver(platform.queue[0])
    finish(platform, retry)
    assert current(platform)["status"] == "COMPLETED"

    finish(platform, record)

    assert record.error is None, record.error
    assert event_types(platform) == ["transaction.completed"]


def test_a_failed_attempt_that_is_retried_is_not_announced_as_failed(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    assert current(platform)["status"] == "FAILED"
    assert event_types(platform) == []  # a retry follows: nothing final to announce

    model.drive_calm(platform)

    assert current(platform)["status"] == "COMPLETED"
    model.check_invariants(platform)  # its only notification is "transaction.completed"


# ---------------------------------------------------------------------------- defect 2


def test_the_safety_net_never_fails_a_newer_attempt_holding_a_live_lease(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.Timeout"})
    platform.pull_failed_queue()
    attempt_two = platform.deliver(platform.queue[0])
    step_until(platform, attempt_two, "processor.POST")  # attempt 2 holds a live lease
    assert current(platform)["attempts"] == 2

    net = spawn(
        platform, "SafetyNet", lambda: recovery.resume(platform.services, txn, ts, abandoned="TIMED_OUT")
    )
    finish(platform, net)

    assert isinstance(net.error, SettlementInProgress)
    assert current(platform)["status"] == "SETTLING"  # attempt 2 was not the abandoned one
    finish(platform, attempt_two)
    assert current(platform)["status"] == "COMPLETED" and current(platform)["attempts"] == 2
    assert len(platform.ledger.charges_for(txn)) == 1


def test_record_failure_leaves_a_settling_attempt_with_a_live_lease_alone(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST")  # the invocation lives on, its lease runs

    recorded = steps.failure_step(platform.services, txn, ts, {"Error": "States.Timeout"})

    assert recorded == {"status": "SETTLING", "recorded": False}
    finish(platform, settle)
    assert current(platform)["status"] == "COMPLETED"
    assert len(platform.ledger.charges_for(txn)) == 1


def test_record_failure_fails_a_settling_attempt_once_its_lease_ran_out(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST")
    lease_expires(platform)

    recorded = steps.failure_step(platform.services, txn, ts, {"Error": "States.Timeout"})

    assert recorded == {"status": "FAILED", "recorded": True}
    finish(platform, settle)  # the stale owner cannot conclude over the failure
    model.drive_calm(platform)
    assert current(platform)["status"] == "COMPLETED"
    assert len(platform.ledger.charges_for(txn)) == 1


# ---------------------------------------------------------------------------- defect 3


def test_a_refused_request_is_rejected_in_one_step_with_the_processors_reason(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST", fault="http400")  # closed account, nothing charged
    finish(platform, settle)

    assert settle.error is None, settle.error
    final = current(platform)
    assert final["status"] == "REJECTED" and final["attempts"] == 1
    assert final["rejection"] == {"source": "processor", "reasons": ["account_closed"]}
    assert platform.ledger.charges_for(txn) == []
    steps.outcome_step(platform.services, txn, ts)
    assert event_types(platform) == ["transaction.rejected"]


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (400, b'{"code": "account_closed"}', "rejected"),
        (422, b'{"error": "invalid_token"}', "rejected"),
        (400, b'{"error": "idempotency_error", "message": "key reused"}', OutcomeUnknown),
        (400, b'{"error": {"type": "idempotency_error", "message": "same key, other body"}}', OutcomeUnknown),
        (400, b'{"error": {"type": "card_error", "code": "x", "decline_code": "closed"}}', "closed"),
        (409, b'{"error": "idempotency_key_in_use"}', OutcomeUnknown),
        (409, b'{"error": "conflict"}', OutcomeUnknown),
        (429, b"{}", ProcessorUnavailable),
        (503, b"{}", OutcomeUnknown),
    ],
)
def test_processor_answers_are_classified(status: int, payload: bytes, expected: Any) -> None:
    processor = Processor(
        lambda name, **_: "https://processor.test/charges", "endpoint", "creds", lambda *a: (status, payload)
    )
    request = charge_request(
        {
            "transaction_id": "t",
            "amount_minor": 100,
            "currency": "USD",
            "payment_method_token": "tok",
            "merchant_id": "m",
        }
    )
    if isinstance(expected, str):
        result = processor.charge(request)
        assert not result.approved and result.decline_code
        if expected != "rejected":
            assert result.decline_code == expected
    else:
        with pytest.raises(expected) as raised:
            processor.charge(request)
        if expected is ProcessorUnavailable:
            assert not isinstance(raised.value, OutcomeUnknown)


def test_an_unanswered_payment_is_parked_after_the_retry_budget_not_cycled_forever(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    budget = platform.services.settings.max_settlement_attempts
    for _ in range(budget * 3):  # the processor never answers; the sweeper re-queues what the DLQ kept
        if current(platform).get("parked"):
            break
        platform.clock.now += (platform.services.settings.stuck_after_seconds + 1) * 1000
        recovery.sweep(platform.services)
        platform.pull_failed_queue()
        for message in list(platform.queue):
            delivery = platform.deliver(message)
            for _ in range(50):
                if delivery.done:
                    break
                platform.scheduler.step(delivery, "refused" if delivery.pending == "processor.POST" else None)
            platform.reap()
        platform.queue.clear()
        platform.dlq.clear()  # nobody redrives: only the automatic actors run

    final = current(platform)
    # A charge request was marked sent on every attempt: only a human may call it failed.
    assert final["status"] == "FAILED" and final["parked"]["reason"] == "outcome_unresolved"
    assert final["attempts"] == budget
    assert recovery.resume(platform.services, txn, ts) == {"status": "PARKED"}
    assert txn not in recovery.sweep(platform.services).redriven  # parked rows are not re-queued
    assert platform.ledger.charges_for(txn) == []
    assert event_types(platform) == []  # parked is not an outcome


def test_a_payment_never_sent_to_the_processor_ends_final_failed_with_one_event(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.Timeout"})
    platform.aws.drain(platform.aws.n["FAILED_QUEUE_URL"])
    platform.services.repo.ddb.update_item(
        TableName=platform.services.settings.transactions_table,
        Key={"transaction_id": {"S": txn}, "timestamp": {"N": str(ts)}},
        UpdateExpression="SET attempts = :n",
        ExpressionAttributeValues={":n": {"N": str(platform.services.settings.max_settlement_attempts)}},
    )

    assert recovery.resume(platform.services, txn, ts) == {"status": "FAILED"}
    assert recovery.resume(platform.services, txn, ts) == {"status": "FAILED"}  # a duplicate: no change

    final = current(platform)
    assert final["final"]["reason"] == "retry_budget_spent" and not final.get("outbox")
    assert event_types(platform) == ["transaction.failed"]
    assert platform.ledger.requests == []


def test_the_sweeper_requeues_a_failed_payment_whose_retry_message_was_lost(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    platform.aws.drain(platform.aws.n["FAILED_QUEUE_URL"])  # the message is gone (DLQ, expired)
    assert current(platform)["status"] == "FAILED" and not current(platform).get("outbox")

    platform.clock.now += (platform.services.settings.stuck_after_seconds + 1) * 1000
    swept = recovery.sweep(platform.services)

    assert swept.redriven == [txn]
    messages = platform.aws.drain(platform.aws.n["FAILED_QUEUE_URL"])
    assert [json.loads(m["Body"])["transaction_id"] for m in messages] == [txn]


# ---------------------------------------------------------------------------- issue 23 item 5: EXPRESS


def test_a_replay_while_pending_does_not_start_a_second_express_execution(platform: model.Platform) -> None:
    """EXPRESS state machines do not de-duplicate StartExecution by name (the model's Step Functions
    starts every call): the conditional claim on the item is what keeps a replay from starting a
    second workflow."""
    client = platform.client("k1", "tok_visa_4242", "merch_reg")
    finish(platform, client)
    assert len([a for a in platform.scheduler.live() if a.kind == "workflow"]) == 1
    [item] = model.transactions(platform)
    assert item["status"] == "PENDING" and item["workflow_claimed_at"]

    replay = platform.client("k1", "tok_visa_4242", "merch_reg")  # the same request again
    finish(platform, replay)

    assert len([a for a in platform.scheduler.live() if a.kind == "workflow"]) == 1
    model.drive_calm(platform)
    model.check_invariants(platform)


# ---------------------------------------------------------------------------- the safety net's copy


def test_the_safety_net_repeating_record_failure_spends_no_attempt(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})  # RecordFailure
    assert current(platform)["status"] == "FAILED"  # and its retry message is queued

    # The execution ended FAILED: EventBridge repeats the failure on the same queue.
    answer = recovery.resume(platform.services, txn, ts, abandoned="FAILED")

    assert answer == {"status": "FAILED"}
    assert current(platform)["attempts"] == 1  # acknowledged without an attempt of its own
    model.drive_calm(platform)  # RecordFailure's message settles it
    assert (current(platform)["status"], current(platform)["attempts"]) == ("COMPLETED", 2)
    model.check_invariants(platform)


def test_an_outage_as_long_as_the_receive_budget_still_settles_without_an_operator(
    platform: model.Platform,
) -> None:
    platform.client("outage", "tok_visa_4242", "merch_outage")
    # The processor refuses every call: Settle fails thrice, RecordFailure queues the retry, the
    # safety net repeats it, and every delivery fails until the messages are dead-lettered.
    platform.outage(model.MAX_RECEIVES)
    assert platform.dlq and current(platform)["status"] == "FAILED"

    model.drive_calm(platform)  # no operator: only the sweeper's re-enqueue brings it back

    item = current(platform)
    assert item["status"] == "COMPLETED", item  # not parked: one failure, one attempt
    assert int(item["attempts"]) <= 1 + model.MAX_RECEIVES + 1
    model.check_invariants(platform)
