"""The settlement rules one at a time: what the sweeper fails, re-queues or leaves alone, how the
retry budget ends, what the safety net does with each kind of failed row, who may take a lease or
start an attempt, and what each step writes to the audit trail and answers.

Each test pins one rule on the settlement model's platform (tests/unit/model.py) driven from the
test itself, with the model's clock, so that boundaries (the sweeper's cutoff, a lease's last
millisecond) are exact. They are the rules the mutation run (tools/mutation.py) showed no other
fast test held.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from payments import audit, ids, recovery, steps
from payments.clock import Clock, iso_from_ms, ms_from_iso
from payments.dynamo import serialize
from payments.errors import DomainError, ProcessorUnavailable, TransitionConflict
from payments.outbox import drain, publish_stream
from payments.processor import Processor, ProcessorResult
from payments.settle import (
    ArchiveNotEncrypted,
    SettlementInProgress,
    SettlementNotOwned,
    _settle_answer,
    acquire,
    archive,
    charge_request,
    completed_fields,
    declined_fields,
    lease_live,
    outcome_fields,
    recorded_result,
    release,
    settle_owned,
    settle_step,
    start_attempt,
)
from payments.steps import MAX_TRANSITION_ATTEMPTS

from tests.unit import model
from tests.unit.awsenv import AwsEnv
from tests.unit.test_settlement_protocol import finish, spawn, step_until

DAY_MS = 86_400_000


@pytest.fixture
def platform(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[model.Platform]:
    with model.platform(aws, monkeypatch, 1_796_000_000_000) as built:
        yield built


# ---------------------------------------------------------------------------- helpers


def pending(platform: model.Platform, key: str) -> dict[str, Any]:
    """A PENDING transaction whose workflow never started (the test plays every actor)."""
    finish(platform, platform.client(key, "tok_visa_4242", "merch_reg"))
    for execution in [a for a in platform.scheduler.live() if a.kind == "workflow"]:
        platform.scheduler.actors.remove(execution)
    [item] = [i for i in model.transactions(platform) if i["customer_id"] == f"cust_{key}"]
    return item


def checked(platform: model.Platform, key: str = "k1") -> dict[str, Any]:
    """A transaction created and checked (VALIDATING, fraud APPROVE); no workflow running."""
    item = pending(platform, key)
    steps.validate_step(platform.services, item["transaction_id"], item["timestamp"])
    steps.fraud_step(platform.services, item["transaction_id"], item["timestamp"])
    return item


def row(platform: model.Platform, item: dict[str, Any]) -> dict[str, Any]:
    return platform.services.repo.require(str(item["transaction_id"]), int(item["timestamp"]))


def audit_of(platform: model.Platform, txn: str) -> list[dict[str, Any]]:
    return sorted(model.audit_entries(platform, txn), key=lambda e: int(e["version"]))


def set_fields(
    platform: model.Platform, item: dict[str, Any], expression: str, values: dict[str, Any]
) -> None:
    """Write attributes the way another actor's write would leave them (no version change)."""
    platform.aws.ddb.update_item(
        TableName=platform.services.settings.transactions_table,
        Key={"transaction_id": {"S": item["transaction_id"]}, "timestamp": {"N": str(item["timestamp"])}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )


def failed_queue(platform: model.Platform) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in platform.aws.drain(platform.aws.n["FAILED_QUEUE_URL"])]


def past_budget(platform: model.Platform) -> None:
    platform.clock.now += (platform.services.settings.stuck_after_seconds + 1) * 1000


def spend_budget(platform: model.Platform, item: dict[str, Any], *, charge_sent: bool) -> dict[str, Any]:
    """``item`` FAILED on the last attempt of its budget (the retry message already consumed)."""
    steps.failure_step(
        platform.services, item["transaction_id"], item["timestamp"], {"Error": "ProcessorUnavailable"}
    )
    failed_queue(platform)
    budget = platform.services.settings.max_settlement_attempts
    values: dict[str, Any] = {":n": {"N": str(budget)}}
    expression = "SET attempts = :n"
    if charge_sent:
        expression += ", charge_sent_at = :c"
        values[":c"] = {"N": str(platform.clock.now)}
    set_fields(platform, item, expression, values)
    return row(platform, item)


def owe_retry(platform: model.Platform, item: dict[str, Any]) -> None:
    """The retry enqueue of a FAILED transition still in the outbox (its send was lost)."""
    set_fields(platform, item, "ADD outbox :o", {":o": {"SS": ["enqueue"]}})


# ---------------------------------------------------------------------------- sweep: what is stuck


def test_a_row_one_millisecond_past_the_budget_is_swept_and_one_at_the_budget_is_not(
    platform: model.Platform,
) -> None:
    item = pending(platform, "edge")
    updated = ms_from_iso(item["updated_at"])
    budget_ms = platform.services.settings.stuck_after_seconds * 1000

    at_budget = recovery.sweep(platform.services, now=updated + budget_ms)
    assert at_budget.failed == [] and row(platform, item)["status"] == "PENDING"

    past = recovery.sweep(platform.services, now=updated + budget_ms + 1)
    assert past.failed == [item["transaction_id"]] and row(platform, item)["status"] == "FAILED"


def test_the_sweeper_reads_the_lookback_days_before_today(platform: model.Platform) -> None:
    day = (platform.clock.now // DAY_MS + 1) * DAY_MS  # the next midnight (UTC)
    platform.clock.now = day + 1000
    old = pending(platform, "two-days-ago")
    platform.clock.now = day + DAY_MS + 1000
    recent = pending(platform, "yesterday")
    lookback = platform.services.settings.sweep_lookback_days
    assert lookback == 2

    # One millisecond into the day: the partitions read are whole days back from it.
    swept = recovery.sweep(platform.services, now=day + lookback * DAY_MS + 1)

    assert sorted(swept.failed) == sorted([old["transaction_id"], recent["transaction_id"]])
    assert swept.scanned_partitions == (lookback + 1) * platform.services.settings.day_shards
    assert swept.candidates == 2


def test_the_sweep_counts_every_candidate_and_every_item_that_failed(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = pending(platform, "bad-1")
    platform.clock.now += DAY_MS  # another day: another partition
    second = pending(platform, "bad-2")
    third = pending(platform, "good")
    past_budget(platform)
    bad = {first["transaction_id"], second["transaction_id"]}
    real = steps.failure_step

    def failure_step(services: Any, transaction_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if transaction_id in bad:
            raise RuntimeError("dynamodb unavailable")
        return real(services, transaction_id, *args, **kwargs)

    monkeypatch.setattr(recovery, "failure_step", failure_step)
    caplog.set_level(logging.WARNING, logger="payments.recovery")

    swept = recovery.sweep(platform.services)

    assert swept.candidates == 3
    assert swept.errors == 2
    assert swept.failed == [third["transaction_id"]]  # one bad item does not stop the sweep
    warnings = [r for r in caplog.records if r.name == "payments.recovery"]
    assert sorted(r.getMessage() for r in warnings) == sorted(f"sweep: {t} failed" for t in bad)
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in warnings)


def test_the_sweep_stops_when_less_than_its_margin_is_left(platform: model.Platform) -> None:
    partitions = (platform.services.settings.sweep_lookback_days + 1) * platform.services.settings.day_shards

    enough = recovery.sweep(platform.services, time_left=lambda: 5.0)  # exactly the margin: go on
    short = recovery.sweep(platform.services, time_left=lambda: 4.999)

    assert enough.complete is True and enough.scanned_partitions == partitions
    assert short.complete is False and short.scanned_partitions == 0


def test_the_sweeper_fails_a_later_attempt_whose_lease_ran_out_and_queues_its_retry(
    platform: model.Platform,
) -> None:
    item = checked(platform)
    txn = item["transaction_id"]
    steps.failure_step(platform.services, txn, item["timestamp"], {"Error": "ProcessorUnavailable"})
    failed_queue(platform)
    start_attempt(platform.services, row(platform, item), "crashed-consumer", "retry")  # then it died
    assert (row(platform, item)["status"], row(platform, item)["attempts"]) == ("SETTLING", 2)
    past_budget(platform)  # the lease (90 s) ran out long ago

    swept = recovery.sweep(platform.services)

    assert swept.failed == [txn]
    stored = row(platform, item)
    assert (stored["status"], stored["attempts"]) == ("FAILED", 2)
    assert stored["failure"]["error"] == "Sweeper.Stuck"
    assert stored["failure"]["cause"] == "unchanged in SETTLING past the workflow budget"
    assert audit_of(platform, txn)[-1]["actor"] == "sweeper"
    [message] = failed_queue(platform)
    assert message["transaction_id"] == txn and message["error"] == "Sweeper.Stuck"


def test_the_sweeper_leaves_an_attempt_whose_lease_still_runs_untouched(platform: model.Platform) -> None:
    item = checked(platform)
    steps.failure_step(
        platform.services, item["transaction_id"], item["timestamp"], {"Error": "ProcessorUnavailable"}
    )
    failed_queue(platform)
    start_attempt(platform.services, row(platform, item), "fast-clock-owner", "retry")
    platform.aws.audit_stream()
    # Its owner's clock runs ahead: the lease outlives the workflow budget as the others see it.
    past_budget(platform)
    set_fields(platform, item, "SET lease_until = :u", {":u": {"N": str(platform.clock.now + 60_000)}})
    before = row(platform, item)
    assert before["stream_outbox"]  # the SETTLING stream message is still owed

    swept = recovery.sweep(platform.services)

    assert swept.failed == [] and swept.errors == 0 and swept.candidates == 1
    assert row(platform, item)["version"] == before["version"]  # not a single write
    assert platform.aws.audit_stream() == []


def test_the_sweeper_fails_exactly_the_version_it_found(platform: model.Platform) -> None:
    item = pending(platform, "late-workflow")
    past_budget(platform)
    sweeper = spawn(platform, "Sweeper", lambda: recovery.sweep(platform.services))
    step_until(platform, sweeper, "dynamodb.get_item")
    platform.scheduler.step(sweeper)  # the sweeper re-read the stale PENDING row
    step_until(platform, sweeper, "dynamodb.get_item")  # failure_step is about to read it again
    steps.validate_step(platform.services, item["transaction_id"], item["timestamp"])  # it moves

    finish(platform, sweeper)

    assert sweeper.error is None, sweeper.error
    assert sweeper.result.failed == [] and sweeper.result.errors == 0
    assert row(platform, item)["status"] == "VALIDATING"


def test_the_sweepers_reread_at_the_cutoff_is_not_stuck(platform: model.Platform) -> None:
    """The index is read first; the row is read again before acting: a row whose last change is
    at the cutoff (not before it) is neither failed nor re-queued."""
    waiting = pending(platform, "waiting")
    failed = checked(platform)
    steps.failure_step(platform.services, failed["transaction_id"], failed["timestamp"], {"Error": "X"})
    failed_queue(platform)
    result = recovery.SweepResult()

    for item in (waiting, failed):
        stored = row(platform, item)
        cutoff = ms_from_iso(stored["updated_at"])
        recovery._sweep_one(platform.services, stored, cutoff + 1, cutoff, result)

    assert result.failed == []
    assert row(platform, waiting)["status"] == "PENDING"
    assert failed_queue(platform) == []  # the FAILED row was not re-queued


def test_the_sweeper_sends_what_a_failed_row_owes_instead_of_queueing_it_again(
    platform: model.Platform,
) -> None:
    item = checked(platform)
    steps.failure_step(platform.services, item["transaction_id"], item["timestamp"], {"Error": "X"})
    failed_queue(platform)
    owe_retry(platform, item)  # RecordFailure's enqueue is still owed
    past_budget(platform)

    swept = recovery.sweep(platform.services)

    assert swept.redriven == [item["transaction_id"]]
    assert len(failed_queue(platform)) == 1
    assert not row(platform, item).get("outbox")  # sent by the drain, so no longer owed


def test_the_sweeper_never_queues_a_parked_row_it_drains(platform: model.Platform) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=True)
    platform.aws.audit_stream()
    giving_up = spawn(platform, "Retry", lambda: recovery.give_up(platform.services, row(platform, item)))
    step_until(platform, giving_up, "sqs.send_message_batch", fault="throttle")  # its stream message
    finish(platform, giving_up)
    assert row(platform, item)["parked"] and row(platform, item)["stream_outbox"]
    past_budget(platform)

    swept = recovery.sweep(platform.services)

    assert swept.redriven == [item["transaction_id"]]
    assert [json.loads(m["Body"])["to_status"] for m in platform.aws.audit_stream()] == ["FAILED"]
    assert failed_queue(platform) == []  # parked: a human decides, nothing is retried


# ---------------------------------------------------------------------------- the retry budget's end


def test_a_budget_spent_after_a_charge_left_parks_with_its_reason_and_sends_no_retry(
    platform: model.Platform, caplog: pytest.LogCaptureFixture
) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=True)
    owe_retry(platform, item)
    budget = platform.services.settings.max_settlement_attempts
    caplog.set_level(logging.ERROR, logger="payments.recovery")
    now = platform.clock.now

    assert recovery.give_up(platform.services, row(platform, item)) == {"status": "PARKED"}

    parked = row(platform, item)["parked"]
    assert parked["reason"] == "outcome_unresolved" and parked["attempts"] == budget
    assert now <= ms_from_iso(parked["at"]) <= platform.clock.now
    last = audit_of(platform, item["transaction_id"])[-1]
    assert (last["to_status"], last["actor"], last["detail"]) == ("FAILED", "retry", {"gave_up": "parked"})
    assert failed_queue(platform) == []  # parked: no retry is sent, whatever the outbox held
    [logged] = [r for r in caplog.records if r.name == "payments.recovery"]
    assert (
        logged.getMessage() == f"{item['transaction_id']}: parked after {budget} attempts, outcome unresolved"
    )


def test_a_budget_spent_before_any_charge_ends_final_with_its_reason(platform: model.Platform) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=False)
    budget = platform.services.settings.max_settlement_attempts
    now = platform.clock.now

    assert recovery.give_up(platform.services, row(platform, item)) == {"status": "FAILED"}

    final = row(platform, item)["final"]
    assert final["reason"] == "retry_budget_spent" and final["attempts"] == budget
    assert now <= ms_from_iso(final["at"]) <= platform.clock.now
    last = audit_of(platform, item["transaction_id"])[-1]
    assert (last["actor"], last["detail"]) == ("retry", {"gave_up": "final"})


def test_a_second_give_up_from_the_same_read_answers_what_the_first_decided(platform: model.Platform) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=True)
    both_read = row(platform, item)  # two deliveries of the last retry read the same row

    assert recovery.give_up(platform.services, dict(both_read)) == {"status": "PARKED"}
    assert recovery.give_up(platform.services, dict(both_read)) == {"status": "PARKED"}

    gave_up = [e for e in audit_of(platform, item["transaction_id"]) if e["detail"].get("gave_up")]
    assert len(gave_up) == 1


@pytest.mark.parametrize(("approved", "status"), [(True, "COMPLETED"), (False, "REJECTED")])
def test_a_recorded_answer_is_concluded_even_when_the_budget_is_spent(
    platform: model.Platform, approved: bool, status: str
) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=True)
    late = ProcessorResult(
        approved=approved, reference="ref-late", decline_code=None if approved else "do_not_honor"
    )
    assert platform.services.repo.record_outcome(item, outcome_fields(late, platform.clock.now))

    answer = recovery.resume(platform.services, item["transaction_id"], item["timestamp"])

    assert answer == {"status": status}
    stored = row(platform, item)
    assert stored["status"] == status and not stored.get("parked")
    assert platform.ledger.requests == []  # concluded from the recorded answer, nothing sent


def owned(platform: model.Platform, owner: str) -> dict[str, Any]:
    """A retry attempt SETTLING under ``owner``'s lease, nothing sent to the processor yet."""
    item = checked(platform)
    steps.failure_step(platform.services, item["transaction_id"], item["timestamp"], {"Error": "X"})
    failed_queue(platform)
    start_attempt(platform.services, row(platform, item), owner, "retry")
    return row(platform, item)


def owned_with_answer(platform: model.Platform, owner: str, result: ProcessorResult) -> dict[str, Any]:
    """A retry attempt SETTLING under ``owner``'s lease whose processor answer is recorded."""
    item = owned(platform, owner)
    assert platform.services.repo.record_outcome(item, outcome_fields(result, platform.clock.now))
    return row(platform, item)


@pytest.mark.parametrize(
    ("result", "status", "stored", "detail"),
    [
        (
            ProcessorResult(True, "ref-1", None),
            "COMPLETED",
            {"processor_reference": "ref-1"},
            {"processor_reference": "ref-1"},
        ),
        (
            ProcessorResult(False, "ref-2", "do_not_honor"),
            "REJECTED",
            {
                "processor_reference": "ref-2",
                "rejection": {"source": "processor", "reasons": ["do_not_honor"]},
            },
            {"decline_code": "do_not_honor"},
        ),
    ],
    ids=["approved", "declined"],
)
def test_the_conclusion_stores_and_audits_what_the_processor_answered(
    platform: model.Platform,
    result: ProcessorResult,
    status: str,
    stored: dict[str, Any],
    detail: dict[str, Any],
) -> None:
    item = owned_with_answer(platform, "owner-a", result)
    before = platform.clock.now

    answer = settle_owned(platform.services, item, "owner-a", "retry")

    assert answer["status"] == status
    after = row(platform, item)
    assert after["status"] == status and {k: after.get(k) for k in stored} == stored
    if status == "COMPLETED":
        assert before <= ms_from_iso(after["settled_at"]) <= platform.clock.now
    last = audit_of(platform, item["transaction_id"])[-1]
    assert (last["to_status"], last["actor"], last["detail"]) == (status, "retry", detail)


@pytest.mark.parametrize("approved", [True, False], ids=["approved", "declined"])
def test_a_recorded_answer_is_never_concluded_under_another_owners_lease(
    platform: model.Platform, approved: bool
) -> None:
    """An owner whose lease was taken over reads the new owner's row with the answer it recorded
    (``_processor_result`` after a lost ``record_outcome``): it must not conclude that attempt."""
    item = owned_with_answer(
        platform, "owner-b", ProcessorResult(approved, "ref-1", None if approved else "x")
    )

    with pytest.raises(SettlementNotOwned, match=f"^{item['transaction_id']}: attempt taken over"):
        settle_owned(platform.services, item, "owner-a", "retry")

    after = row(platform, item)
    assert (after["status"], after["lease_owner"], after["version"]) == (
        "SETTLING",
        "owner-b",
        item["version"],
    )


def test_an_owner_that_lost_its_lease_before_charging_sends_nothing(platform: model.Platform) -> None:
    item = owned(platform, "owner-b")

    with pytest.raises(SettlementNotOwned, match=f"^{item['transaction_id']}: lease lost before charging$"):
        settle_owned(platform.services, item, "owner-a", "retry")

    assert platform.ledger.requests == []
    assert row(platform, item)["version"] == item["version"]


def test_an_answer_another_actor_recorded_first_is_the_one_concluded(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our lookup's answer loses to the one already recorded (the truth about the one charge)."""
    stale = owned(platform, "owner-a")
    set_fields(platform, stale, "SET charge_sent_at = :c", {":c": {"N": str(platform.clock.now)}})
    stale = row(platform, stale)
    first = ProcessorResult(False, "ref-first", "do_not_honor")
    assert platform.services.repo.record_outcome(stale, outcome_fields(first, platform.clock.now))
    monkeypatch.setattr(Processor, "lookup", lambda self, request: ProcessorResult(True, "ref-late", None))

    answer = settle_owned(platform.services, stale, "owner-a", "retry")

    assert answer == {
        "status": "REJECTED",
        "processor_reference": "ref-first",
        "decline_code": "do_not_honor",
    }
    assert row(platform, stale)["processor_reference"] == "ref-first"
    assert platform.ledger.requests == []


def test_a_charge_sent_again_keeps_its_first_mark_without_marking_again(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup that finds nothing sends the charge again under the same key; the first send's
    mark stands (the processor's key window counts from it), so no second mark is written."""
    item = owned(platform, "owner-a")
    sent_at = platform.clock.now - 1_000
    set_fields(platform, item, "SET charge_sent_at = :c", {":c": {"N": str(sent_at)}})
    item = row(platform, item)
    marks: list[int] = []
    mark = platform.services.repo.mark_charge_sent
    monkeypatch.setattr(
        platform.services.repo, "mark_charge_sent", lambda *a, **k: marks.append(1) or mark(*a, **k)
    )

    answer = settle_owned(platform.services, item, "owner-a", "retry")

    assert answer["status"] == "COMPLETED" and marks == []
    assert int(row(platform, item)["charge_sent_at"]) == sent_at
    assert [r["method"] for r in platform.ledger.requests].count("POST") == 1


def test_a_conclusion_goes_on_past_a_bookkeeping_write_while_the_lease_is_still_ours(
    platform: model.Platform,
) -> None:
    """Another actor's write that moves only the version (a stream prune) makes the conclusion
    conflict; the attempt, its owner and its lease are unchanged, so the owner concludes it."""
    stale = owned_with_answer(platform, "owner-a", ProcessorResult(True, "ref-1", None))
    set_fields(platform, stale, "SET version = version + :one", {":one": {"N": "1"}})

    answer = settle_owned(platform.services, stale, "owner-a", "retry")

    assert answer == {"status": "COMPLETED", "processor_reference": "ref-1"}
    last = audit_of(platform, stale["transaction_id"])[-1]
    assert (last["to_status"], last["actor"]) == ("COMPLETED", "retry")


def test_a_conclusion_that_keeps_conflicting_gives_up_naming_the_transaction(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = owned_with_answer(platform, "owner-a", ProcessorResult(True, "ref-1", None))
    tries: list[int] = []

    def conflict(*args: Any, **kwargs: Any) -> dict[str, Any]:
        tries.append(1)
        raise TransitionConflict("moved")

    monkeypatch.setattr(platform.services.repo, "transition", conflict)

    with pytest.raises(
        TransitionConflict, match=f"^{item['transaction_id']}: could not conclude the attempt$"
    ):
        settle_owned(platform.services, item, "owner-a", "retry")

    assert len(tries) == MAX_TRANSITION_ATTEMPTS
    assert row(platform, item)["status"] == "SETTLING"


def test_a_stale_conclusion_of_a_concluded_payment_answers_what_is_stored(platform: model.Platform) -> None:
    """Two copies of one owner's conclusion (a retried task): the second's write conflicts, and it
    answers the stored outcome and sends the audit stream the first left owed."""
    stale = owned_with_answer(platform, "owner-a", ProcessorResult(True, "ref-1", None))
    moved = platform.services.repo.transition(
        stale, "COMPLETED", "retry", set_fields={"processor_reference": "ref-1"}, lease_owner="owner-a"
    )
    assert moved["stream_outbox"]

    answer = settle_owned(platform.services, stale, "owner-a", "retry")

    assert answer == {"status": "COMPLETED", "processor_reference": "ref-1"}
    assert not row(platform, stale).get("stream_outbox")


# ---------------------------------------------------------------------------- the safety net


def test_the_safety_net_settles_an_attempt_an_earlier_copy_of_it_failed(platform: model.Platform) -> None:
    """The first delivery failed attempt 1 (``States.TIMED_OUT``, nothing queued) and died: the
    next delivery of the same message settles it, not answering as if a retry were queued."""
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    error = {"Error": "States.TIMED_OUT", "Cause": "workflow execution TIMED_OUT"}
    steps.failure_step(platform.services, txn, ts, error, actor="retry", enqueue=False)

    assert recovery.resume(platform.services, txn, ts, abandoned="TIMED_OUT") == {"status": "COMPLETED"}
    assert row(platform, item)["attempts"] == 2


def test_the_safety_net_settles_a_later_attempt_the_retry_consumer_failed(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})  # RecordFailure
    failed_queue(platform)
    second = start_attempt(platform.services, row(platform, item), "consumer", "retry")
    release(platform.services, second, "consumer")
    steps.failure_step(
        platform.services,
        txn,
        ts,
        {"Error": "ProcessorUnavailable"},
        actor="retry",
        enqueue=False,
        attempt=2,
        owner="consumer",
    )
    assert (row(platform, item)["status"], row(platform, item)["attempts"]) == ("FAILED", 2)

    # The execution's FAILED event arrives late: attempt 2 is not a retry someone queued.
    assert recovery.resume(platform.services, txn, ts, abandoned="FAILED") == {"status": "COMPLETED"}
    assert row(platform, item)["attempts"] == 3


def test_the_safety_net_sends_the_retry_record_failure_still_owed(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed", "Cause": "boom"})
    failed_queue(platform)
    owe_retry(platform, item)  # RecordFailure's send was lost after its FAILED committed

    assert recovery.resume(platform.services, txn, ts, abandoned="FAILED") == {"status": "FAILED"}

    [message] = failed_queue(platform)
    assert message["transaction_id"] == txn and message["error"] == "States.TaskFailed"
    stored = row(platform, item)
    assert stored["attempts"] == 1 and not stored.get("outbox")


def test_the_safety_net_fails_the_abandoned_attempt_as_the_retry_consumer_without_queueing(
    platform: model.Platform,
) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]

    assert recovery.resume(platform.services, txn, ts, abandoned="TIMED_OUT") == {"status": "COMPLETED"}

    failed = [e for e in audit_of(platform, txn) if e["to_status"] == "FAILED"]
    assert [e["actor"] for e in failed] == ["retry"]
    failure = row(platform, item)["failure"]
    assert (failure["error"], failure["cause"]) == ("States.TIMED_OUT", "workflow execution TIMED_OUT")
    assert failed_queue(platform) == []  # its own message is retried by SQS: nothing queued


# ---------------------------------------------------------------------------- leases and attempts


def test_a_lease_runs_through_its_last_millisecond() -> None:
    # The complement of take_over_lease's condition (lease_until < now).
    assert lease_live({"lease_until": 1_000}, 1_000) is True
    assert lease_live({"lease_until": 999}, 1_000) is False
    assert lease_live({}, 1_000) is False


def _paused_before_charging(platform: model.Platform) -> tuple[dict[str, Any], Any]:
    """A checked payment whose Settle holds the lease and is paused before its processor call."""
    item = checked(platform)
    settle = spawn(
        platform, "Settle", lambda: settle_step(platform.services, item["transaction_id"], item["timestamp"])
    )
    step_until(platform, settle, "processor.POST")
    return item, settle


def test_acquire_keeps_our_own_lease_without_a_write(platform: model.Platform) -> None:
    item, settle = _paused_before_charging(platform)
    held = row(platform, item)

    assert acquire(platform.services, held, str(held["lease_owner"])) is held
    assert row(platform, item)["version"] == held["version"]
    finish(platform, settle)


def test_acquire_refuses_a_live_lease_and_a_lost_race_naming_the_transaction(
    platform: model.Platform,
) -> None:
    item = checked(platform)
    txn = item["transaction_id"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, item["timestamp"]))
    step_until(platform, settle, "processor.POST")

    with pytest.raises(SettlementInProgress, match=f"^{txn}: attempt 1 is being settled$"):
        acquire(platform.services, row(platform, item), "another")

    platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000
    stale = row(platform, item)
    acquire(platform.services, row(platform, item), "first-taker")
    with pytest.raises(SettlementInProgress, match=f"^{txn}: lost the lease race$"):
        acquire(platform.services, stale, "second-taker")
    assert row(platform, item)["lease_owner"] == "first-taker"


def test_a_take_over_stamps_the_takers_clock_and_moves_the_version(platform: model.Platform) -> None:
    item, _settle = _paused_before_charging(platform)
    held = row(platform, item)
    lease_ms = platform.services.settings.settlement_lease_seconds * 1000
    # The taker's host clock runs three minutes past the lease, not the platform's clock: the stamp
    # is the taker's reading, in the one UTC format (payments.clock).
    taken_at = int(held["lease_until"]) + 180_000
    taker = replace(platform.services, clock=Clock(lambda: taken_at))

    taken = acquire(taker, held, "taker")

    stored = row(platform, item)
    assert stored["lease_owner"] == "taker" and stored["lease_until"] == taken_at + lease_ms
    assert stored["updated_at"] == taken["updated_at"] == iso_from_ms(taken_at) != held["updated_at"]
    assert stored["version"] == taken["version"] == held["version"] + 1


def test_a_lease_that_cannot_be_released_is_logged_with_its_cause(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    item = checked(platform)

    def refused(*_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")

    monkeypatch.setattr(platform.services.repo, "release_lease", refused)
    caplog.set_level(logging.WARNING, logger="payments.settle")

    release(platform.services, item, "owner")  # best effort: does not raise

    [logged] = [r for r in caplog.records if r.name == "payments.settle"]
    assert logged.getMessage() == f"{item['transaction_id']}: lease not released; it expires on its own"
    assert logged.exc_info and isinstance(logged.exc_info[1], ClientError)


def test_a_new_attempt_waits_for_the_previous_attempts_lease(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    failed_queue(platform)
    second = start_attempt(platform.services, row(platform, item), "consumer-a", "retry")
    assert audit_of(platform, txn)[-1]["actor"] == "retry"
    # consumer-a fails its attempt but could not release its lease: it may still be running.
    steps.failure_step(
        platform.services,
        txn,
        ts,
        {"Error": "Timeout"},
        actor="retry",
        enqueue=False,
        attempt=2,
        owner="consumer-a",
    )
    assert lease_live(row(platform, item), platform.clock.now)
    assert second["attempts"] == 2

    with pytest.raises(SettlementInProgress, match=f"^{txn}: the previous attempt may still be running$"):
        start_attempt(platform.services, row(platform, item), "consumer-b", "retry")

    stored = row(platform, item)
    assert (stored["status"], stored["attempts"]) == ("FAILED", 2)


def test_a_new_attempt_from_a_stale_read_is_a_conflict_not_a_wait(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    both_read = row(platform, item)
    start_attempt(platform.services, dict(both_read), "consumer-a", "retry")  # live lease, SETTLING

    with pytest.raises(TransitionConflict) as raised:
        start_attempt(platform.services, dict(both_read), "consumer-b", "retry")

    assert not isinstance(raised.value, SettlementInProgress)
    assert row(platform, item)["lease_owner"] == "consumer-a"


def test_a_decline_without_a_code_is_recorded_as_card_declined() -> None:
    assert declined_fields(ProcessorResult(approved=False, reference="ref-9", decline_code=None)) == {
        "processor_reference": "ref-9",
        "rejection": {"source": "processor", "reasons": ["card_declined"]},
    }


# ---------------------------------------------------------------------------- reject and notify


def rejected_by_fraud(platform: model.Platform) -> dict[str, Any]:
    """A checked transaction (VALIDATING) whose fraud check refused it (a blocked merchant)."""
    finish(platform, platform.client("blocked", "tok_visa_4242", "merch_blocked"))
    for execution in [a for a in platform.scheduler.live() if a.kind == "workflow"]:
        platform.scheduler.actors.remove(execution)
    [item] = [i for i in model.transactions(platform) if i["customer_id"] == "cust_blocked"]
    steps.validate_step(platform.services, item["transaction_id"], item["timestamp"])
    steps.fraud_step(platform.services, item["transaction_id"], item["timestamp"])
    return item


def test_reject_records_who_rejected_and_why_in_the_audit_trail(platform: model.Platform) -> None:
    item = rejected_by_fraud(platform)
    txn = item["transaction_id"]

    assert steps.reject_step(platform.services, txn, item["timestamp"]) == {"status": "REJECTED"}

    rejection = row(platform, item)["rejection"]
    assert rejection["source"] == "fraud" and rejection["reasons"]
    last = audit_of(platform, txn)[-1]
    assert (last["to_status"], last["actor"]) == ("REJECTED", "notification")
    assert last["detail"] == {"source": "fraud", "reasons": rejection["reasons"]}


def test_reject_refusals_name_the_transaction_and_the_reason(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    passed = checked(platform)
    txn, ts = passed["transaction_id"], passed["timestamp"]
    with pytest.raises(DomainError, match=f"^{txn}: checks passed, refusing to reject$"):
        steps.reject_step(platform.services, txn, ts)
    settle_step(platform.services, txn, ts)
    with pytest.raises(DomainError, match=f"^{txn}: cannot reject from COMPLETED$"):
        steps.reject_step(platform.services, txn, ts)
    blocked = rejected_by_fraud(platform)
    with pytest.raises(
        DomainError, match=f"^{blocked['transaction_id']}: no outcome to notify in status VALIDATING$"
    ):
        steps.outcome_step(platform.services, blocked["transaction_id"], blocked["timestamp"])

    calls: list[str] = []

    def always_moved(item: dict[str, Any], *_: Any, **__: Any) -> Any:
        calls.append(str(item["status"]))
        raise TransitionConflict("moved")

    monkeypatch.setattr(platform.services.repo, "transition", always_moved)
    with pytest.raises(TransitionConflict, match=f"^{blocked['transaction_id']}: could not reject$"):
        steps.reject_step(platform.services, blocked["transaction_id"], blocked["timestamp"])
    assert calls == ["VALIDATING"] * steps.MAX_TRANSITION_ATTEMPTS


def test_notify_answers_the_status_and_the_topic_name(platform: model.Platform) -> None:
    approved = checked(platform)
    settle_step(platform.services, approved["transaction_id"], approved["timestamp"])
    blocked = rejected_by_fraud(platform)
    steps.reject_step(platform.services, blocked["transaction_id"], blocked["timestamp"])

    assert steps.outcome_step(platform.services, approved["transaction_id"], approved["timestamp"]) == {
        "status": "COMPLETED",
        "topic": "payment-events-test",
    }
    assert steps.outcome_step(platform.services, blocked["transaction_id"], blocked["timestamp"]) == {
        "status": "REJECTED",
        "topic": "payment-failed-test",
    }


def test_notify_never_sends_a_retry(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable"})
    failed_queue(platform)
    owe_retry(platform, item)  # the retry RecordFailure owes is not Notify's to send

    assert steps.outcome_step(platform.services, txn, ts)["status"] == "FAILED"

    assert failed_queue(platform) == []


# ---------------------------------------------------------------------------- the retry message


def test_the_retry_message_carries_the_failure_compactly(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "ProcessorUnavailable", "Cause": "refused"})
    [raw] = platform.aws.drain(platform.aws.n["FAILED_QUEUE_URL"])
    failure = row(platform, item)["failure"]
    expected = {
        "transaction_id": txn,
        "timestamp": ts,
        "error": "ProcessorUnavailable",
        "cause": "refused",
        "failed_at": failure["at"],
    }
    assert raw["Body"] == json.dumps(expected, separators=(",", ":"))
    assert audit_of(platform, txn)[-1]["actor"] == "notification"  # RecordFailure's function
    assert failure["at"] == iso_from_ms(ms_from_iso(failure["at"]))

    other = pending(platform, "no-cause")
    steps.failure_step(
        platform.services, other["transaction_id"], other["timestamp"], {"Error": "States.Timeout"}
    )
    [message] = failed_queue(platform)
    assert (message["error"], message["cause"]) == ("States.Timeout", "")


# ---------------------------------------------------------------------------- a failure's error and cause


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, ("UnknownError", "")),
        ({}, ("UnknownError", "")),
        ({"error": "Lower", "cause": "lower-case keys"}, ("Lower", "lower-case keys")),
        ({"Error": "Upper", "Cause": "", "cause": "not this one"}, ("Upper", "")),
        ({"Error": "E" * 200}, ("E" * 128, "")),
        (
            {"Error": "Lambda", "Cause": '{"errorType": "Boom", "errorMessage": "it broke", "trace": []}'},
            ("Lambda", "Boom: it broke"),
        ),
        ({"Error": "Lambda", "Cause": '{"errorMessage": "only a message"}'}, ("Lambda", "only a message")),
        ({"Error": "Lambda", "Cause": '{"errorType": "OnlyAType"}'}, ("Lambda", "OnlyAType")),
        ({"Error": "Lambda", "Cause": "[1, 2]"}, ("Lambda", "[1, 2]")),
        (
            {"Error": "Lambda", "Cause": '{"errorType": "XmlError", "errorMessage": "bad XML: X"}'},
            ("Lambda", "XmlError: bad XML: X"),
        ),
        ({"Error": "Long", "Cause": "c" * 600}, ("Long", "c" * 500)),
        (
            {"Error": "card 4111111111111111", "Cause": "card 4111 1111 1111 1111 refused"},
            ("card [REDACTED-PAN]", "card [REDACTED-PAN] refused"),
        ),
    ],
)
def test_a_failure_is_recorded_with_a_bounded_error_and_cause_free_of_card_numbers(
    error: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    assert steps.sanitize_error(error) == expected


# ------------------------------------------------------------------ the processor's answer and the archive

AT_MS = 1_796_000_000_000  # 2026-11-30T00:53:20.000Z
ARCHIVE_KEY = "transactions/2026/11/30/txn_01.json"


def test_an_answer_is_stored_with_its_outcome_reference_time_and_decline_code() -> None:
    approved = ProcessorResult(approved=True, reference="ch_1")
    declined = ProcessorResult(approved=False, reference="ch_2", decline_code="insufficient_funds")
    assert outcome_fields(approved, AT_MS) == {
        "processor_outcome": "approved",
        "processor_reference": "ch_1",
        "outcome_recorded_at": "2026-11-30T00:53:20.000Z",
    }
    assert outcome_fields(declined, AT_MS + 1) == {
        "processor_outcome": "declined",
        "processor_reference": "ch_2",
        "outcome_recorded_at": "2026-11-30T00:53:20.001Z",
        "decline_code": "insufficient_funds",
    }
    assert completed_fields(approved, AT_MS) == {
        "processor_reference": "ch_1",
        "settled_at": "2026-11-30T00:53:20.000Z",
    }


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (
            {"processor_outcome": "approved", "processor_reference": "ch_1", "decline_code": "x"},
            ProcessorResult(True, "ch_1", None),
        ),
        ({"processor_outcome": "approved"}, ProcessorResult(True, "", None)),
        (
            {"processor_outcome": "declined", "processor_reference": "ch_2", "decline_code": "expired_card"},
            ProcessorResult(False, "ch_2", "expired_card"),
        ),
        (
            {"processor_outcome": "declined", "processor_reference": "ch_3"},
            ProcessorResult(False, "ch_3", "card_declined"),
        ),
        ({"processor_outcome": "unknown"}, None),
        ({}, None),
    ],
)
def test_a_recorded_answer_reads_back_as_the_processors_result(
    stored: dict[str, Any], expected: ProcessorResult | None
) -> None:
    assert recorded_result(stored) == expected


def test_the_charge_is_a_function_of_the_stored_transaction_only() -> None:
    item = {
        "transaction_id": "txn_1",
        "amount_minor": Decimal("4200"),
        "currency": "EUR",
        "payment_method_token": "tok_visa_4242",
        "merchant_id": "merch_1",
        "status": "SETTLING",
    }
    request = charge_request(item)
    assert (
        request.transaction_id,
        request.amount_minor,
        request.currency,
        request.token,
        request.merchant_id,
    ) == (
        "txn_1",
        4200,
        "EUR",
        "tok_visa_4242",
        "merch_1",
    )
    assert type(request.amount_minor) is int


@pytest.mark.parametrize(
    ("item", "answer"),
    [
        (
            {"status": "COMPLETED", "processor_reference": "ch_1"},
            {"status": "COMPLETED", "processor_reference": "ch_1"},
        ),
        ({"status": "COMPLETED", "processor_reference": ""}, {"status": "COMPLETED"}),
        (
            {
                "status": "REJECTED",
                "processor_reference": "ch_2",
                "rejection": {"source": "processor", "reasons": ["expired_card", "x"]},
            },
            {"status": "REJECTED", "processor_reference": "ch_2", "decline_code": "expired_card"},
        ),
        (
            {"status": "REJECTED", "rejection": {"source": "processor", "reasons": []}},
            {"status": "REJECTED", "decline_code": "card_declined"},
        ),
        (
            {"status": "REJECTED", "rejection": {"source": "fraud", "reasons": ["blocked_merchant"]}},
            {"status": "REJECTED"},
        ),
        ({"status": "REJECTED", "rejection": "processor"}, {"status": "REJECTED"}),
    ],
)
def test_the_settle_answer_names_the_reference_and_a_processors_decline(
    item: dict[str, Any], answer: dict[str, Any]
) -> None:
    assert _settle_answer(item) == answer


class RecordingS3:
    """The one S3 call archive makes, with the encryption S3 answers."""

    def __init__(self, encryption: str | None) -> None:
        self.encryption = encryption
        self.calls: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"ServerSideEncryption": self.encryption} if self.encryption else {}


SETTLED = {
    "transaction_id": "txn_01",
    "timestamp": AT_MS,
    "status": "COMPLETED",
    "amount_minor": 4200,
    "currency": "USD",
    "merchant_id": "merch_1",
    "fraud": {"score": Decimal("12.5"), "decision": "APPROVE", "reasons": []},
    "processor_reference": "ch_1",
}


@pytest.mark.parametrize("encryption", ["aws:kms", "aws:kms:dsse"])
def test_the_archive_is_one_compact_sorted_json_object_under_the_creation_day(encryption: str) -> None:
    s3 = RecordingS3(encryption)

    key = archive(s3, "archive-bucket", SETTLED)  # type: ignore[arg-type]

    assert key == ARCHIVE_KEY
    [call] = s3.calls
    assert (call["Bucket"], call["Key"], call["ContentType"]) == ("archive-bucket", key, "application/json")
    body = call["Body"].decode()
    document = json.loads(body)
    assert document["transaction_id"] == "txn_01" and document["processor_reference"] == "ch_1"
    assert document["fraud"]["score"] == "12.5"  # a DynamoDB number is written as its text
    assert body == json.dumps(document, separators=(",", ":"), sort_keys=True)


@pytest.mark.parametrize("encryption", [None, "AES256", "aws:kms:other"])
def test_an_archive_not_encrypted_with_kms_fails_loudly(encryption: str | None) -> None:
    with pytest.raises(
        ArchiveNotEncrypted,
        match=re.escape("s3://archive-bucket/transactions/2026/11/30/txn_01.json is not SSE-KMS encrypted")
        + "$",
    ):
        archive(RecordingS3(encryption), "archive-bucket", SETTLED)  # type: ignore[arg-type]


def test_a_lease_is_taken_for_the_configured_seconds(platform: model.Platform) -> None:
    item, settle = _paused_before_charging(platform)
    held = row(platform, item)
    entered = ms_from_iso(held["updated_at"])

    assert held["lease_owner"] and isinstance(held["lease_owner"], str)
    # Entering SETTLING reads the clock once for the lease, once for the write: 1 ms apart at most.
    lease_ms = platform.services.settings.settlement_lease_seconds * 1000
    assert entered + lease_ms - 5 <= held["lease_until"] <= entered + lease_ms
    finish(platform, settle)


# ------------------------------------------------------------------ the retry consumer's own attempt


def refused(platform: model.Platform, name: str, body: Any) -> model.Actor:
    """Run ``body`` as an actor whose every processor call is refused (nothing sent)."""
    actor = spawn(platform, name, body)
    model.run_to_completion(platform, actor, lambda op: "refused" if op.startswith("processor.") else None)
    return actor


def test_the_retry_consumer_fails_the_new_attempt_it_owns_and_frees_its_lease(
    platform: model.Platform,
) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})
    failed_queue(platform)
    first = row(platform, item)
    assert first["first_failed_at"] == first["failure"]["at"]
    recorded = audit_of(platform, txn)[-1]
    assert (recorded["to_status"], recorded["actor"]) == ("FAILED", "notification")
    assert recorded["detail"] == {"error": "States.TaskFailed"}

    consumer = refused(platform, "Retry", lambda: recovery.resume(platform.services, txn, ts))

    assert isinstance(consumer.error, ProcessorUnavailable)
    stored = row(platform, item)
    assert (stored["status"], stored["attempts"], stored["lease_until"]) == ("FAILED", 2, 0)
    assert stored["first_failed_at"] == first["failure"]["at"] < stored["failure"]["at"]  # kept
    assert stored["failure"]["error"] == "ProcessorUnavailable"
    assert stored["failure"]["cause"] == str(consumer.error)
    assert stored["failure"]["from_status"] == "SETTLING"
    last = audit_of(platform, txn)[-1]
    assert (last["from_status"], last["to_status"], last["actor"], last["attempt"]) == (
        "SETTLING",
        "FAILED",
        "retry",
        2,
    )
    assert failed_queue(platform) == []  # its own message is retried by SQS


def test_the_retry_consumer_fails_a_taken_over_attempt_it_owns(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})
    failed_queue(platform)
    start_attempt(
        platform.services, row(platform, item), "crashed-consumer", "retry"
    )  # attempt 2, then it died
    platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000

    consumer = refused(platform, "Retry", lambda: recovery.resume(platform.services, txn, ts))

    assert isinstance(consumer.error, ProcessorUnavailable)
    stored = row(platform, item)
    assert (stored["status"], stored["attempts"], stored["lease_until"]) == ("FAILED", 2, 0)
    last = audit_of(platform, txn)[-1]
    assert (last["to_status"], last["actor"], last["attempt"]) == ("FAILED", "retry", 2)


@pytest.mark.parametrize("start", ["VALIDATING", "FAILED", "SETTLING"])
def test_every_transition_the_retry_consumer_makes_is_its_own(platform: model.Platform, start: str) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    if start != "VALIDATING":
        steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})
        failed_queue(platform)
    if start == "SETTLING":
        start_attempt(platform.services, row(platform, item), "crashed-consumer", "retry")
        platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000
    before = len(audit_of(platform, txn))

    assert recovery.resume(platform.services, txn, ts) == {"status": "COMPLETED"}

    made = audit_of(platform, txn)[before:]
    assert [e["to_status"] for e in made] == (
        ["COMPLETED"] if start == "SETTLING" else ["SETTLING", "COMPLETED"]
    )
    assert {e["actor"] for e in made} == {"retry"}


def test_the_last_attempt_abandoned_while_settling_is_still_settled(platform: model.Platform) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=False)
    set_fields(platform, item, "SET attempts = :n", {":n": {"N": str(item["attempts"] - 1)}})
    start_attempt(platform.services, row(platform, item), "crashed-consumer", "retry")  # the last one
    assert row(platform, item)["attempts"] == platform.services.settings.max_settlement_attempts
    platform.clock.now += (platform.services.settings.settlement_lease_seconds + 1) * 1000

    assert recovery.resume(platform.services, item["transaction_id"], item["timestamp"]) == {
        "status": "COMPLETED"
    }
    assert not row(platform, item).get("parked")


def test_a_parked_payment_is_answered_without_a_write(platform: model.Platform) -> None:
    item = spend_budget(platform, checked(platform), charge_sent=True)
    assert recovery.give_up(platform.services, row(platform, item)) == {"status": "PARKED"}
    parked = row(platform, item)

    assert recovery.resume(platform.services, item["transaction_id"], item["timestamp"]) == {
        "status": "PARKED"
    }
    assert row(platform, item)["version"] == parked["version"]


def test_an_attempt_that_could_not_be_failed_is_logged_and_the_original_error_raised(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})
    failed_queue(platform)

    def unavailable(*_: Any, **__: Any) -> Any:
        raise RuntimeError("dynamodb unavailable")

    monkeypatch.setattr(recovery, "failure_step", unavailable)
    caplog.set_level(logging.WARNING, logger="payments.recovery")

    consumer = refused(platform, "Retry", lambda: recovery.resume(platform.services, txn, ts))

    assert isinstance(consumer.error, ProcessorUnavailable)
    [logged] = [r for r in caplog.records if r.name == "payments.recovery"]
    assert logged.getMessage() == f"{txn}: attempt 2 not failed"
    assert logged.exc_info and isinstance(logged.exc_info[1], RuntimeError)
    assert row(platform, item)["status"] == "SETTLING"  # left to its lease and the sweeper


def test_the_retry_consumer_rejects_what_the_rerun_checks_refuse(platform: model.Platform) -> None:
    item = rejected_by_fraud(platform)
    txn, ts = item["transaction_id"], item["timestamp"]

    assert recovery.resume(platform.services, txn, ts) == {"status": "REJECTED"}

    last = audit_of(platform, txn)[-1]
    assert (last["to_status"], last["actor"]) == ("REJECTED", "retry")


def test_the_retry_consumer_fails_its_attempt_even_when_its_lease_could_not_be_released(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})
    failed_queue(platform)

    def throttled(*_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")

    monkeypatch.setattr(platform.services.repo, "release_lease", throttled)

    consumer = refused(platform, "Retry", lambda: recovery.resume(platform.services, txn, ts))

    assert isinstance(consumer.error, ProcessorUnavailable)
    stored = row(platform, item)
    assert lease_live(stored, platform.clock.now)  # its own lease still runs: the owner may fail it
    assert (stored["status"], stored["attempts"]) == ("FAILED", 2)


def test_record_failure_as_an_owner_leaves_an_attempt_someone_else_holds(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle = spawn(platform, "Settle", lambda: settle_step(platform.services, txn, ts))
    step_until(platform, settle, "processor.POST")

    answer = steps.failure_step(
        platform.services, txn, ts, {"Error": "X"}, actor="retry", owner="not-the-owner"
    )

    assert answer == {"status": "SETTLING", "recorded": False}
    finish(platform, settle)
    assert row(platform, item)["status"] == "COMPLETED"


def test_the_workflows_settle_never_takes_over_a_later_attempt(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    steps.failure_step(platform.services, txn, ts, {"Error": "States.TaskFailed"})
    start_attempt(platform.services, row(platform, item), "crashed-consumer", "retry")
    platform.clock.now += (
        platform.services.settings.settlement_lease_seconds + 1
    ) * 1000  # its lease ran out

    with pytest.raises(SettlementNotOwned, match=f"^{txn}: SETTLING attempt 2 is the retry path's$"):
        settle_step(platform.services, txn, ts)

    assert row(platform, item)["lease_owner"] == "crashed-consumer"
    assert platform.ledger.requests == []


def test_a_retry_for_a_transaction_that_does_not_exist_is_answered_missing(platform: model.Platform) -> None:
    unknown = ids.new_transaction_id(platform.clock.now)

    assert recovery.resume(platform.services, unknown, None) == {"status": "MISSING"}


def test_a_long_owed_audit_stream_is_sent_whole_in_order_in_batches(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit queue was unavailable for 25 transitions: all 25 go out, in version order, each
    once, in batches of at most ten (SendMessageBatch's limit)."""
    item = checked(platform)
    platform.aws.audit_stream()
    at = iso_from_ms(platform.clock.now)
    owed = [audit.stream_entry("VALIDATING", "VALIDATING", at, "test", v, 1) for v in range(3, 28)]
    set_fields(platform, item, "SET stream_outbox = :so", {":so": serialize(owed)})
    batches: list[list[int]] = []
    real = audit.publish

    def publish(sqs: Any, queue_url: str, entries: list[Any]) -> None:
        batches.append([json.loads(e["MessageBody"])["version"] for e in entries])
        real(sqs, queue_url, entries)

    monkeypatch.setattr(audit, "publish", publish)

    published = publish_stream(platform.services, row(platform, item))

    assert batches == [list(range(3, 13)), list(range(13, 23)), list(range(23, 28))]
    assert [json.loads(m["Body"])["version"] for m in platform.aws.audit_stream()] == list(range(3, 28))
    assert published["stream_outbox"] == [] and row(platform, item)["stream_outbox"] == []


def test_a_failed_notice_left_by_an_earlier_release_is_dropped_unsent(platform: model.Platform) -> None:
    item = rejected_by_fraud(platform)
    steps.reject_step(platform.services, item["transaction_id"], item["timestamp"])
    platform.aws.notifications("failed")
    # An earlier release queued "failed_notice"; and this row's outcome is owed again (lost ack).
    set_fields(platform, item, "ADD outbox :o", {":o": {"SS": ["failed_notice", "outcome"]}})

    drained = drain(platform.services, row(platform, item))

    [event] = platform.aws.notifications("failed")
    assert json.loads(event["Message"])["status"] == "REJECTED"  # the outcome, once; no failed notice
    assert not drained.get("outbox") and not row(platform, item).get("outbox")


STORED = {
    "currency": "USD",
    "amount_minor": 4200,
    "payment_method_token": "tok_visa_4242",
    "merchant_id": "merch_1",
    "customer_id": "cust_1",
}
APPROVED = {"decision": "APPROVE", "reasons": [], "score": 0}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"validation": {"valid": False, "reasons": ["invalid_amount"]}},
            (False, ["invalid_amount"], "validation"),
        ),
        ({"validation": {"valid": False}, "fraud": APPROVED}, (False, [], "validation")),
        ({"validation": {"valid": True, "reasons": []}}, (False, ["fraud_check_missing"], "fraud")),
        ({"validation": {"valid": True}, "fraud": "APPROVE"}, (False, ["fraud_check_missing"], "fraud")),
        (
            {"validation": {"valid": True}, "fraud": {"decision": "REJECT", "reasons": ["blocked_merchant"]}},
            (False, ["blocked_merchant"], "fraud"),
        ),
        ({"validation": {"valid": True}, "fraud": {"decision": "REVIEW"}}, (False, [], "fraud")),
        ({"validation": {"valid": True}, "fraud": APPROVED}, (True, [], "")),
        # No stored validation (a failure before Validate ran): the stored record is checked again.
        ({**STORED, "fraud": APPROVED}, (True, [], "")),
        (
            {**STORED, "currency": "XXX", "amount_minor": 0, "fraud": APPROVED},
            (False, ["unsupported_currency", "invalid_amount"], "validation"),
        ),
    ],
)
def test_checks_pass_only_with_a_valid_record_and_an_approving_fraud_result(
    item: dict[str, Any], expected: tuple[bool, list[str], str]
) -> None:
    assert steps.checks_passed(item) == expected


# ------------------------------------------------------------------ validate and settle: who, and refusals


def validated(platform: model.Platform) -> dict[str, Any]:
    """A PENDING transaction moved to VALIDATING by the test (no fraud result yet)."""
    item = pending(platform, "k1")
    steps.validate_step(platform.services, item["transaction_id"], item["timestamp"])
    return item


def test_validation_stores_its_result_and_sends_the_stream_it_owes(platform: model.Platform) -> None:
    item = pending(platform, "k1")
    txn, ts = item["transaction_id"], item["timestamp"]
    platform.aws.audit_stream()

    result = steps.validate_step(platform.services, txn, ts)

    after = row(platform, item)
    assert after["status"] == "VALIDATING" and after["validation"] == result == {"valid": True, "reasons": []}
    assert after["stream_outbox"] == []
    assert [json.loads(m["Body"])["to_status"] for m in platform.aws.audit_stream()][-1] == "VALIDATING"


def test_a_validation_rerun_answers_the_stored_result_and_sends_what_is_owed(
    platform: model.Platform,
) -> None:
    """A re-run (a duplicate execution) answers what the first run stored — the rules may have
    changed since — and sends the stream messages the first run left owed."""
    item = validated(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    stored = {"valid": False, "reasons": ["stored_by_the_first_run"]}
    owed = [audit.stream_entry("PENDING", "VALIDATING", iso_from_ms(platform.clock.now), "validator", 2, 1)]
    set_fields(
        platform,
        item,
        "SET validation = :v, stream_outbox = :so",
        {":v": serialize(stored), ":so": serialize(owed)},
    )
    platform.aws.audit_stream()

    assert steps.validate_step(platform.services, txn, ts) == stored
    assert row(platform, item)["stream_outbox"] == []
    assert len(platform.aws.audit_stream()) == 1


def test_fraud_is_scored_once_with_its_time_excluding_the_payment_itself(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = validated(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    counted: list[tuple[Any, ...]] = []
    count = platform.services.repo.count_recent_for_customer
    monkeypatch.setattr(
        platform.services.repo, "count_recent_for_customer", lambda *a: counted.append(a) or count(*a)
    )
    at = platform.clock.now

    result = steps.fraud_step(platform.services, txn, ts)

    assert [(c[0], c[2]) for c in counted] == [("cust_k1", txn)]  # its customer, itself excluded
    assert (
        row(platform, item)["fraud"] == result
        and at <= ms_from_iso(result["assessed_at"]) <= platform.clock.now
    )
    # the rules changed since: a re-run answers what is stored, without scoring again
    set_fields(platform, item, "SET fraud.decision = :d", {":d": {"S": "REVIEW"}})
    assert steps.fraud_step(platform.services, txn, ts)["decision"] == "REVIEW"
    assert len(counted) == 1


def test_a_fraud_result_stored_first_by_a_duplicate_execution_is_the_answer(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = validated(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    theirs = {"decision": "APPROVE", "score": 1, "reasons": [], "assessed_at": "theirs"}
    rules = platform.services.fraud_rules

    def rules_then_the_other_execution_stores() -> Any:
        loaded = rules()
        set_fields(platform, item, "SET fraud = :f", {":f": serialize(theirs)})
        return loaded

    monkeypatch.setattr(platform.services, "fraud_rules", rules_then_the_other_execution_stores)

    assert steps.fraud_step(platform.services, txn, ts) == theirs
    assert row(platform, item)["fraud"] == theirs


def test_fraud_is_never_stored_on_a_payment_that_moved_on(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle_step(platform.services, txn, ts)
    platform.aws.ddb.update_item(
        TableName=platform.services.settings.transactions_table,
        Key={"transaction_id": {"S": txn}, "timestamp": {"N": str(ts)}},
        UpdateExpression="REMOVE fraud",
    )

    with pytest.raises(DomainError, match=f"^{txn}: fraud result not stored \\(status COMPLETED\\)$"):
        steps.fraud_step(platform.services, txn, ts)

    assert "fraud" not in row(platform, item)


def test_validate_and_settle_are_audited_as_their_functions(platform: model.Platform) -> None:
    item = pending(platform, "k1")
    txn, ts = item["transaction_id"], item["timestamp"]

    assert steps.validate_step(platform.services, txn, ts) == {"valid": True, "reasons": []}
    assert steps.validate_step(platform.services, txn, ts) == {"valid": True, "reasons": []}  # a re-run
    steps.fraud_step(platform.services, txn, ts)
    settle_step(platform.services, txn, ts)

    made = [(e["to_status"], e["actor"], e["detail"]) for e in audit_of(platform, txn)[1:]]
    assert made == [
        ("VALIDATING", "validator", {"valid": "True"}),
        ("SETTLING", "settlement", {}),
        ("COMPLETED", "settlement", {"processor_reference": row(platform, item)["processor_reference"]}),
    ]


def test_settle_refusals_name_the_transaction_and_the_reason(
    platform: model.Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = pending(platform, "waiting")
    with pytest.raises(DomainError, match=f"^{waiting['transaction_id']}: cannot settle from PENDING$"):
        settle_step(platform.services, waiting["transaction_id"], waiting["timestamp"])
    blocked = rejected_by_fraud(platform)
    with pytest.raises(
        DomainError, match=f"^{blocked['transaction_id']}: checks did not pass; not settling$"
    ):
        settle_step(platform.services, blocked["transaction_id"], blocked["timestamp"])

    item = checked(platform, "moving")
    calls: list[str] = []

    def always_moved(current: dict[str, Any], *_: Any, **__: Any) -> Any:
        calls.append(str(current["status"]))
        raise TransitionConflict("moved")

    monkeypatch.setattr(platform.services.repo, "transition", always_moved)
    with pytest.raises(TransitionConflict, match=f"^{item['transaction_id']}: could not enter SETTLING$"):
        settle_step(platform.services, item["transaction_id"], item["timestamp"])
    with pytest.raises(
        TransitionConflict, match=f"^{waiting['transaction_id']}: could not enter VALIDATING$"
    ):
        steps.validate_step(platform.services, waiting["transaction_id"], waiting["timestamp"])
    assert (
        calls == ["VALIDATING"] * steps.MAX_TRANSITION_ATTEMPTS + ["PENDING"] * steps.MAX_TRANSITION_ATTEMPTS
    )
    assert platform.ledger.requests == []


def test_a_retry_of_a_finished_payment_sends_what_it_still_owes(platform: model.Platform) -> None:
    item = checked(platform)
    txn, ts = item["transaction_id"], item["timestamp"]
    settle_step(platform.services, txn, ts)  # COMPLETED; Notify has not run
    platform.aws.notifications("events")
    set_fields(platform, item, "ADD outbox :o", {":o": {"SS": ["outcome"]}})

    assert recovery.resume(platform.services, txn, ts) == {"status": "COMPLETED"}

    [event] = platform.aws.notifications("events")
    assert json.loads(event["Message"])["status"] == "COMPLETED"
    assert not row(platform, item).get("outbox")
