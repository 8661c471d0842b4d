"""Regression tests for issue 15's defects 1-8, each a scripted schedule of the settlement model.

Every test drives the real domain code through tests/unit/model.py: the actors stop before each
AWS/processor call, so a test states exactly which actor moves when and which call meets a fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from payments import recovery, steps
from payments.handlers import fraud_check, intake, retry
from payments.settle import SettlementInProgress, SettlementNotOwned, settle_step

from tests.unit import awsenv, model
from tests.unit.awsenv import AwsEnv, api_event, body_of, payment
from tests.unit.flows import CTX


@pytest.fixture
def platform(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[model.Platform]:
    with model.platform(aws, monkeypatch, 1_796_000_000_000) as built:
        yield built


def step_until(platform: model.Platform, actor: model.Actor, op: str, fault: str | None = None) -> None:
    """Run ``actor`` (no faults) until it stops before ``op``; then that call meets ``fault``."""
    for _ in range(500):
        if actor.pending == op:
            if fault is not None:
                platform.scheduler.step(actor, fault)
            return
        assert not actor.done, f"{actor.name} finished before {op}: {actor.error!r}"
        platform.scheduler.step(actor)
    raise AssertionError(f"{actor.name} never reached {op}")


def finish(platform: model.Platform, actor: model.Actor) -> None:
    model.run_to_completion(platform, actor)


def created(platform: model.Platform) -> dict[str, Any]:
    """A transaction created and checked (VALIDATING, fraud APPROVE); no workflow running."""
    client = platform.client("k1", "tok_visa_4242", "merch_reg")
    finish(platform, client)
    [execution] = [a for a in platform.scheduler.live() if a.kind == "workflow"]
    platform.scheduler.actors.remove(execution)  # the test plays the workflow's part itself
    [item] = model.transactions(platform)
    steps.validate_step(platform.services, item["transaction_id"], item["timestamp"])
    steps.fraud_step(platform.services, item["transaction_id"], item["timestamp"])
    return item


def current(platform: model.Platform) -> dict[str, Any]:
    [item] = model.transactions(platform)
    return item


def spawn(platform: model.Platform, name: str, body: Any) -> model.Actor:
    return platform.scheduler.spawn(name, body, "task")


# ---------------------------------------------------------------------------- defect 1


def test_a_lost_approval_is_reconciled_not_failed_forever_nor_charged_twice(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST", fault="lost")  # charged; the answer is lost
    finish(platform, settle)
    # The same attempt looked the charge up and completed: no FAILED, no retry needed.
    assert settle.error is None, settle.error
    assert current(platform)["status"] == "COMPLETED"
    assert len(platform.ledger.charges_for(txn)) == 1
    assert [r["method"] for r in platform.ledger.requests] == ["POST", "GET"]


def test_every_attempt_sends_the_same_charge_and_key_retention_is_not_trusted(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST", fault="lost")
    step_until(platform, settle, "processor.GET", fault="refused")  # and the lookup fails too
    finish(platform, settle)
    assert settle.error is not None
    recorded = steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    assert recorded["recorded"] is True
    # Two weeks in the DLQ: the processor has long forgotten the idempotency key.
    platform.clock.now += 14 * 86_400_000
    model.drive_calm(platform)

    assert current(platform)["status"] == "COMPLETED"
    assert len(platform.ledger.charges_for(txn)) == 1
    posts = [r for r in platform.ledger.requests if r["method"] == "POST"]
    assert len(posts) == 1  # the retry looked the charge up instead of charging again
    assert all(r["headers"]["idempotency-key"] == txn for r in posts)
    model.check_invariants(platform)


@pytest.mark.parametrize("failure", ["refused", "lost", "http400", "http429", "http5xx"])
def test_a_lookup_that_fails_is_never_read_as_not_charged(platform: model.Platform, failure: str) -> None:
    """Past the processor's key retention only the lookup knows the charge exists: a lookup that got
    no usable answer must stop the attempt, never let it charge again."""
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST", fault="lost")  # charged; the answer is lost
    step_until(platform, settle, "processor.GET", fault="refused")
    finish(platform, settle)
    assert steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})["recorded"]
    platform.clock.now += 2 * 86_400_000  # the processor has forgotten the idempotency key
    platform.pull_failed_queue()
    [message] = platform.queue

    delivery = platform.deliver(message)
    step_until(platform, delivery, "processor.GET", fault=failure)
    finish(platform, delivery)

    assert [r["method"] for r in platform.ledger.requests].count("POST") == 1  # not charged again
    assert delivery.result == {"batchItemFailures": [{"itemIdentifier": message.message_id}]}
    assert len(platform.ledger.charges_for(txn)) == 1
    platform.reap()
    model.drive_calm(platform)  # the lookup answers again: the one charge is found and concluded
    assert current(platform)["status"] == "COMPLETED"
    assert len(platform.ledger.charges_for(txn)) == 1
    model.check_invariants(platform)


def test_the_charge_body_never_changes_between_attempts(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST", fault="refused")  # surely not sent
    finish(platform, settle)
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    model.drive_calm(platform)

    bodies = {r["body"] for r in platform.ledger.requests if r["method"] == "POST"}
    assert len(bodies) == 1 and b"attempt" not in next(iter(bodies))
    assert current(platform)["attempts"] == 2
    assert len(platform.ledger.charges_for(txn)) == 1


# ---------------------------------------------------------------------------- defect 2


def test_a_duplicate_delivery_cannot_fail_the_attempt_whose_approval_is_in_flight(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.Timeout"})
    platform.pull_failed_queue()
    [message] = platform.queue
    first = platform.deliver(message)
    step_until(platform, first, "processor.POST")  # attempt 2 owns the lease, charge about to leave
    second = platform.deliver(message)  # the same message again (visibility expired)
    finish(platform, second)
    # The retry handler reports the message as a batch item failure: SQS delivers it again later.
    assert second.result == {"batchItemFailures": [{"itemIdentifier": message.message_id}]}
    [raised] = second.caught
    assert isinstance(raised, SettlementInProgress)
    assert current(platform)["status"] == "SETTLING"  # not FAILED by the duplicate

    finish(platform, first)

    assert first.error is None and first.caught == []
    assert first.result == {"batchItemFailures": []}
    final = current(platform)
    assert final["status"] == "COMPLETED" and final["processor_outcome"] == "approved"
    assert len(platform.ledger.charges_for(txn)) == 1


def test_a_stale_settler_cannot_complete_over_the_next_attempt_or_lower_the_version(
    platform: model.Platform,
) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    stale = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, stale, "processor.POST")
    # Step Functions gave up on the task (time-out); the invocation lives on, paused past its lease
    # (a live lease is never failed by another actor), and the failure is recorded.
    platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000
    assert steps.failure_step(platform.services, txn, ts, {"Error": "States.Timeout"})["recorded"]
    assert settle_step.__doc__  # (Settle never leaves FAILED: shown below)
    with pytest.raises(SettlementNotOwned):
        settle_step(platform.services, txn, ts)
    platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000
    platform.pull_failed_queue()
    attempt_two = platform.deliver(platform.queue[0])
    finish(platform, attempt_two)
    after_two = current(platform)
    assert after_two["status"] == "COMPLETED" and after_two["attempts"] == 2

    finish(platform, stale)  # attempt 1 wakes up with the processor's answer

    final = current(platform)
    assert final["status"] == "COMPLETED"
    assert final["version"] == after_two["version"]  # not lowered, not rewritten
    assert len(platform.ledger.charges_for(txn)) == 1
    audit = model.audit_entries(platform, txn)
    assert [e["to_status"] for e in sorted(audit, key=lambda e: e["version"])][-1] == "COMPLETED"
    assert sum(e["to_status"] == "COMPLETED" for e in audit) == 1


def test_a_recorded_outcome_is_never_replaced_by_another(platform: model.Platform) -> None:
    item = created(platform)
    stored = {**item, "status": "SETTLING"}
    repo = platform.services.repo
    assert repo.record_outcome(stored, {"processor_outcome": "approved", "processor_reference": "ch_1"})
    assert repo.record_outcome(stored, {"processor_outcome": "approved", "processor_reference": "ch_1"})
    assert not repo.record_outcome(stored, {"processor_outcome": "declined", "processor_reference": "ch_2"})
    assert current(platform)["processor_outcome"] == "approved"


# ---------------------------------------------------------------------------- defect 3


def test_a_throttled_retry_enqueue_is_sent_by_the_step_functions_retry(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    error = {"Error": "ProcessorUnavailable"}
    first = spawn(platform, "RecordFailure", lambda: steps.failure_step(platform.services, txn, ts, error))
    step_until(platform, first, "sqs.send_message", fault="throttle")  # committed FAILED, then throttled
    finish(platform, first)
    assert first.error is not None and current(platform)["status"] == "FAILED"

    again = spawn(platform, "RecordFailure", lambda: steps.failure_step(platform.services, txn, ts, error))
    finish(platform, again)

    assert again.result == {"status": "FAILED", "recorded": False}
    messages = platform.aws.drain(platform.aws.n["FAILED_QUEUE_URL"])
    assert [json.loads(m["Body"])["transaction_id"] for m in messages] == [txn]
    assert "outbox" not in current(platform)


# ---------------------------------------------------------------------------- defect 4


def test_a_lost_stream_message_after_completion_is_sent_by_the_rerun(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST")
    step_until(platform, settle, "sqs.send_message_batch", fault="throttle")  # after SETTLING→COMPLETED
    finish(platform, settle)
    assert current(platform)["status"] == "COMPLETED" and current(platform)["stream_outbox"]

    rerun = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    finish(platform, rerun)

    stream = [json.loads(m["Body"])["to_status"] for m in platform.aws.audit_stream()]
    assert stream == ["PENDING", "VALIDATING", "SETTLING", "COMPLETED"]


def test_a_completion_whose_notify_failed_is_published_by_the_sweeper(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle_step(platform.services, txn, ts)
    notify = spawn(platform, "Notify", lambda: steps.outcome_step(platform.services, txn, ts))
    step_until(platform, notify, "sns.publish", fault="throttle")  # Notify fails through its retries
    finish(platform, notify)
    assert platform.aws.notifications("events") == []

    platform.clock.now += (platform.services.settings.stuck_after_seconds + 1) * 1000
    swept = recovery.sweep(platform.services)

    assert txn in swept.redriven
    [event] = platform.aws.notifications("events")
    assert event["MessageAttributes"]["event_type"]["Value"] == "transaction.completed"
    assert "outbox" not in current(platform)


def test_a_pending_transaction_whose_workflow_never_started_is_swept_to_the_failed_path(
    platform: model.Platform,
) -> None:
    client = platform.client("k1", "tok_visa_4242", "merch_reg")
    step_until(platform, client, "sfn.start_execution", fault="crash")  # stored, never started
    finish(platform, client)
    assert current(platform)["status"] == "PENDING"
    assert recovery.sweep(platform.services).failed == []  # not stuck yet: within the budget

    platform.clock.now += (platform.services.settings.stuck_after_seconds + 1) * 1000
    swept = recovery.sweep(platform.services)

    assert swept.failed == [current(platform)["transaction_id"]]
    assert current(platform)["status"] == "FAILED"
    model.drive_calm(platform)
    assert current(platform)["status"] == "COMPLETED"
    model.check_invariants(platform)


def test_the_safety_net_message_fails_the_abandoned_attempt_then_resumes(platform: model.Platform) -> None:
    item = created(platform)
    txn = item["transaction_id"]
    body = {
        "transaction_id": txn,
        "source": "workflow-safety-net",
        "execution_status": "TIMED_OUT",
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:payment-workflow-test:{txn}",
        "failed_at": "2026-11-29T15:00:00Z",
    }
    platform.queue.append(model.Message(body))
    platform.queue.append(model.Message(dict(body)))  # at-least-once: delivered twice

    model.drive_calm(platform)

    statuses = [
        e["to_status"] for e in sorted(model.audit_entries(platform, txn), key=lambda e: e["version"])
    ]
    assert statuses == ["PENDING", "VALIDATING", "FAILED", "SETTLING", "COMPLETED"]
    assert current(platform)["failure"]["error"] == "States.TIMED_OUT"
    model.check_invariants(platform)


# ---------------------------------------------------------------------------- defect 6 and 7


@pytest.mark.parametrize(
    "description",
    [
        "4111.1111.1111.1111",
        "4111\u00a01111\u00a01111\u00a01111",
        "4111 - 1111 - 1111 - 1111",
        "4111\n1111\n1111\n1111",
        "4111/1111/1111/1111",
        "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
    ],
)
def test_card_numbers_with_any_separator_or_digit_form_are_refused(aws: AwsEnv, description: str) -> None:
    response = intake.handler(
        api_event("POST", "/transactions", payment(description=description), idempotency_key="k"), CTX
    )

    assert response["statusCode"] == 400
    assert body_of(response)["error"]["code"] == "card_data_not_allowed"
    assert aws.count("TRANSACTIONS_TABLE") == 0


def assert_replays_of(
    aws: AwsEnv, first: dict[str, Any], replays: list[dict[str, Any]], different: dict[str, Any]
) -> None:
    """``replays`` answered with ``first``'s payment (one stored), ``different`` refused as a conflict."""
    assert first["statusCode"] == 202
    for response in replays:
        assert response["statusCode"] == 202, response["body"]
        assert body_of(response) == body_of(first)
        assert response["headers"].get("Idempotent-Replayed") == "true"
    assert different["statusCode"] == 409
    assert aws.count("TRANSACTIONS_TABLE") == 1


def test_replays_of_the_same_payment_spelled_differently_are_not_conflicts(aws: AwsEnv) -> None:
    def post(**overrides: Any) -> dict[str, Any]:
        raw = json.dumps(payment(**overrides))
        for spelled, literal in (('"AMOUNT_1005E2"', "1.005e2"), ('"AMOUNT_100_5"', "100.5")):
            raw = raw.replace(spelled, literal)
        event = api_event("POST", "/transactions", None, raw_body=raw, idempotency_key="same-key")
        return intake.handler(event, CTX)

    first = post(amount="100.50", currency="USD")
    replays = [
        post(amount="AMOUNT_100_5"),
        post(amount="AMOUNT_1005E2"),
        post(amount="100.50", currency="usd"),
        post(amount="0100.50"),
    ]
    different = post(amount="100.51")

    assert_replays_of(aws, first, replays, different)


def test_replays_with_keys_in_another_order_or_other_whitespace_are_the_same_request(aws: AwsEnv) -> None:
    """The request hash is over the normalised payment: neither the order of the body's keys (the
    metadata's included) nor the JSON's whitespace makes a replay a conflict."""
    metadata = {"order_id": "1001", "channel": "web", "basket": "b-7"}

    def post(raw: str) -> dict[str, Any]:
        event = api_event("POST", "/transactions", None, raw_body=raw, idempotency_key="order-key")
        return intake.handler(event, CTX)

    first = post(json.dumps(payment(metadata=metadata)))
    reordered = dict(reversed(list(payment(metadata=dict(reversed(list(metadata.items())))).items())))
    replays = [
        post(json.dumps(reordered)),
        post(json.dumps(payment(metadata=metadata), indent=4, separators=(" , ", " :  "))),
        post(json.dumps(payment(metadata=dict(sorted(metadata.items()))), separators=(",", ":"))),
    ]
    different = post(json.dumps(payment(metadata={**metadata, "channel": "app"})))

    assert_replays_of(aws, first, replays, different)


# ---------------------------------------------------------------------------- defect 8


def test_uyu_is_a_supported_currency(aws: AwsEnv) -> None:
    response = intake.handler(
        api_event("POST", "/transactions", payment(amount="1500.25", currency="UYU"), idempotency_key="u"),
        CTX,
    )

    assert response["statusCode"] == 202, response["body"]
    assert aws.transactions()[0]["amount_minor"] == 150025


@pytest.mark.parametrize(
    ("amount", "currency", "decision"),
    [("10001", "JPY", "APPROVE"), ("9000", "KWD", "REJECT"), ("10000.01", "USD", "REJECT")],
)
def test_default_fraud_thresholds_are_per_currency(
    aws: AwsEnv, amount: str, currency: str, decision: str
) -> None:
    aws.set_fraud_rules({**awsenv.FRAUD_RULES, "amount_thresholds": {"default": "10000"}})
    body = body_of(
        intake.handler(
            api_event(
                "POST", "/transactions", payment(amount=amount, currency=currency), idempotency_key="f"
            ),
            CTX,
        )
    )

    assert fraud_check.handler({"transaction_id": body["transaction_id"]}, CTX)["decision"] == decision


def test_no_failed_notification_for_attempts_that_will_be_retried(platform: model.Platform) -> None:
    item = created(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    platform.pull_failed_queue()
    [message] = platform.queue
    for _ in range(model.MAX_RECEIVES):  # every receive the queue allows, each failing at the processor
        platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000
        delivery = platform.deliver(message)
        step_until(platform, delivery, "processor.POST", fault="refused")
        finish(platform, delivery)
        assert delivery.caught and delivery.result == {
            "batchItemFailures": [{"itemIdentifier": message.message_id}]
        }
        platform.reap()
    assert platform.dlq == [message]

    failed = [
        n
        for n in platform.aws.notifications("failed")
        if n["MessageAttributes"]["event_type"]["Value"] == "transaction.failed"
    ]
    assert failed == []  # "transaction.failed" is final; these attempts are retried
    assert current(platform)["attempts"] == 1 + model.MAX_RECEIVES  # the first attempt and one per receive


class ShrinkingContext(awsenv.FakeContext):
    def __init__(self, remaining_ms: list[int]) -> None:
        super().__init__()
        self.remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]


def test_a_retry_batch_stops_before_the_function_time_out_and_hands_the_rest_back(aws: AwsEnv) -> None:
    ids = [
        body_of(intake.handler(api_event("POST", "/transactions", payment(), idempotency_key=f"b{i}"), CTX))[
            "transaction_id"
        ]
        for i in range(3)
    ]
    event = {
        "Records": [
            {"messageId": f"m-{i}", "body": json.dumps({"transaction_id": t}), "attributes": {}}
            for i, t in enumerate(ids)
        ]
    }
    # 60 s at the start, then the first message used most of it.
    context = ShrinkingContext([60_000, 15_000, 15_000])

    result = retry.handler(event, context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    statuses = {t["transaction_id"]: t["status"] for t in aws.transactions()}
    assert statuses[ids[0]] == "COMPLETED"
    assert statuses[ids[1]] == statuses[ids[2]] == "PENDING"  # untouched, not cut off mid-way


# ---------------------------------------------------------------------------- EXPRESS duplicates


def _step_deepest(platform: model.Platform, actor: model.Actor) -> None:
    target = actor
    while target.awaiting is not None and not target.awaiting.done:
        target = target.awaiting
    platform.scheduler.step(target)


def test_a_duplicate_express_execution_cannot_charge_twice_or_contradict(platform: model.Platform) -> None:
    """StartExecution is idempotent by name only for STANDARD workflows (Step Functions API
    reference, StartExecution); with EXPRESS (the production example) the intake's replay path
    starts a second execution beside the first. Two executions of one PENDING transaction,
    interleaved call by call, still charge at most once and reach one consistent outcome: the
    settlement protocol's conditional transitions, not name de-duplication, are the guard."""
    client = platform.client("k1", "tok_visa_4242", "merch_reg")
    finish(platform, client)
    [first] = [a for a in platform.scheduler.live() if a.kind == "workflow"]
    [item] = model.transactions(platform)
    assert item["status"] == "PENDING"
    platform.start_execution(item["transaction_id"], int(item["timestamp"]))  # the replay's start
    executions = [a for a in platform.scheduler.live() if a.kind == "workflow"]
    assert len(executions) == 2 and first in executions

    for _ in range(2_000):  # alternate the two executions one AWS call at a time
        live = [a for a in executions if not a.done]
        if not live:
            break
        for execution in live:
            _step_deepest(platform, execution)
    assert all(a.done for a in executions)

    model.drive_calm(platform)
    model.check_invariants(platform)  # <= 1 charge, terminal, one outcome notification, audit = stream
    [final] = model.transactions(platform)
    assert final["status"] == "COMPLETED"
    assert len(platform.ledger.charges_for(final["transaction_id"])) == 1
