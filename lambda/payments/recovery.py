"""Recovery: the two actors that finish what the workflow could not — the retry consumer
(``resume``) and the sweeper (``sweep``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payments import ids, validation
from payments.clock import day_from_ms, iso_from_ms, ms_from_iso
from payments.errors import TransactionNotFound, TransitionConflict
from payments.outbox import OUTBOX_OUTCOME, drain, publish_stream, retry_message
from payments.service import Services
from payments.settle import (
    SettlementInProgress,
    acquire,
    lease_live,
    release,
    settle_owned,
    settle_step,
    start_attempt,
)
from payments.shards import day_shard_keys
from payments.states import FAILABLE, Status, is_final, is_parked
from payments.steps import checks_passed, failure_step, fraud_step, reject_step, validate_step

_SWEEP_MARGIN_S = 5
_log = logging.getLogger(__name__)


def _ensure_checks(services: Services, item: dict[str, Any]) -> dict[str, Any]:
    """Validation and fraud results stored (a failure before they ran leaves them missing)."""
    transaction_id, timestamp = str(item["transaction_id"]), int(item["timestamp"])
    if not isinstance(item.get("validation"), Mapping):
        reasons = validation.revalidate_stored(item)
        services.repo.set_once(
            item,
            "validation",
            {"valid": not reasons, "reasons": reasons},
            frozenset({Status.VALIDATING.value, Status.FAILED.value}),
        )
    fraud_step(services, transaction_id, timestamp)
    return services.repo.require(transaction_id, timestamp)


def resume(
    services: Services, transaction_id: str, timestamp: int | None, *, abandoned: str | None = None
) -> dict[str, Any]:
    """Carry a transaction from wherever it stopped to a final status (retry consumer).

    ``abandoned`` names why the workflow that owned it is known to be gone (the Step Functions
    safety net: TIMED_OUT, ABORTED, FAILED): its unfinished attempt is failed first. Raises when
    this attempt fails; the attempt this actor owns is then left FAILED (not re-queued: the SQS
    message itself is retried, and after 3 receives lands in the DLQ).
    """
    try:
        item = services.repo.require(transaction_id, timestamp)
    except TransactionNotFound:
        return {"status": "MISSING"}
    timestamp = int(item["timestamp"])
    owner = ids.new_owner_token()
    owned_attempt: int | None = None
    answer: dict[str, Any] | None = None
    if abandoned:
        item, answer = _safety_net(services, item, abandoned)
    ended = answer or _ended(services, item)
    if ended is not None:
        return ended
    try:
        if item["status"] == Status.PENDING:
            validate_step(services, transaction_id, timestamp)
            item = services.repo.require(transaction_id, timestamp)
        if item["status"] in (Status.VALIDATING, Status.FAILED):
            item = _ensure_checks(services, item)
            if not checks_passed(item)[0]:
                reject_step(services, transaction_id, timestamp, actor="retry")
                return _finish(services, transaction_id, timestamp)
        if item["status"] == Status.VALIDATING:
            settle_step(services, transaction_id, timestamp, actor="retry")
        elif item["status"] == Status.FAILED:
            item = start_attempt(services, item, owner, "retry")
            owned_attempt = int(item["attempts"])
            item = publish_stream(services, item)
            settle_owned(services, item, owner, "retry")
        elif item["status"] == Status.SETTLING:
            item = acquire(services, item, owner)
            owned_attempt = int(item.get("attempts") or 1)
            item = publish_stream(services, item)
            settle_owned(services, item, owner, "retry")
        return _finish(services, transaction_id, timestamp)
    except Exception as exc:
        if owned_attempt is not None and not isinstance(exc, SettlementInProgress):
            # Fail the attempt this actor owns (and only it); the caller reports the original error.
            release(services, item, owner)
            try:
                failure_step(
                    services,
                    transaction_id,
                    timestamp,
                    {"Error": type(exc).__name__, "Cause": str(exc)},
                    actor="retry",
                    enqueue=False,
                    attempt=owned_attempt,
                    owner=owner,
                )
            except Exception:
                _log.warning("%s: attempt %s not failed", transaction_id, owned_attempt, exc_info=True)
        raise


def _safety_net(
    services: Services, item: dict[str, Any], abandoned: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A safety-net message: fail what the abandoned execution owned; or, when RecordFailure (or
    the sweeper) already failed attempt 1 and queued its retry, this message is a second carrier of
    the same failure: settling from both would spend two attempts of the budget per failure
    (parking, after an outage the budget is sized for, a payment nothing was charged for). Then it
    drains the outbox (the owed retry is sent) and answers, without an attempt of its own; a lost
    retry message is the sweeper's to re-enqueue."""
    if item["status"] in FAILABLE:
        return _fail_abandoned(services, item, abandoned), None
    if _failed_and_queued(item, abandoned):
        item = drain(services, item)
        return item, {"status": item["status"]}
    return item, None


def _failed_and_queued(item: Mapping[str, Any], abandoned: str) -> bool:
    """Attempt 1 failed by someone that queued its retry (RecordFailure, the sweeper), not by an
    earlier delivery of this safety-net message (error ``States.<status>``, nothing queued)."""
    failure = item.get("failure")
    error = failure.get("error") if isinstance(failure, Mapping) else None
    return (
        item["status"] == Status.FAILED
        and not (is_final(item) or is_parked(item))
        and int(item.get("attempts") or 1) == 1
        and error != f"States.{abandoned}"
    )


def _fail_abandoned(services: Services, item: Mapping[str, Any], abandoned: str) -> dict[str, Any]:
    """The safety net: fail what the abandoned execution owned — attempt 1, and, when SETTLING,
    only once its lease ran out (failure_step conditions the write on both). A later attempt, or
    a live lease held by anyone, is left alone."""
    transaction_id, timestamp = str(item["transaction_id"]), int(item["timestamp"])
    failure_step(
        services,
        transaction_id,
        timestamp,
        {"Error": f"States.{abandoned}", "Cause": f"workflow execution {abandoned}"},
        actor="retry",
        enqueue=False,
        attempt=1,
    )
    return services.repo.require(transaction_id, timestamp)


def _ended(services: Services, item: dict[str, Any]) -> dict[str, Any] | None:
    """The answer for a payment that has ended (final, parked) or ends now (retry budget spent)."""
    if is_final(item) or is_parked(item):
        item = drain(services, item)
        return {"status": "PARKED" if is_parked(item) else item["status"]}
    if item["status"] == Status.FAILED and _budget_spent(services, item):
        return give_up(services, item)
    return None


def _budget_spent(services: Services, item: Mapping[str, Any]) -> bool:
    """No attempt left, and no recorded processor answer that a next attempt would only conclude."""
    if item.get("processor_outcome") in ("approved", "declined"):
        return False
    return int(item.get("attempts") or 1) >= services.settings.max_settlement_attempts


def give_up(services: Services, item: dict[str, Any]) -> dict[str, Any]:
    """End of the retry budget (FAILED → FAILED, at the version read): final FAILED with its reason
    and a ``transaction.failed`` event when nothing was ever sent to the processor; otherwise a
    charge may exist, so it is parked for a human (``PaymentParked`` metric and alarm), no event."""
    transaction_id, timestamp = str(item["transaction_id"]), int(item["timestamp"])
    attempts = int(item.get("attempts") or 1)
    at = iso_from_ms(services.clock.now_ms())
    if item.get("charge_sent_at") is None:
        fields: dict[str, Any] = {"final": {"reason": "retry_budget_spent", "attempts": attempts, "at": at}}
        effects = frozenset({OUTBOX_OUTCOME})
    else:
        fields = {"parked": {"reason": "outcome_unresolved", "attempts": attempts, "at": at}}
        effects = frozenset()
    try:
        item = services.repo.transition(
            item,
            Status.FAILED,
            "retry",
            set_fields=fields,
            detail={"gave_up": next(iter(fields))},
            outbox=effects,
            expected_attempt=attempts,
        )
    except TransitionConflict:
        item = services.repo.require(transaction_id, timestamp)
    item = drain(services, item, retry=False)
    if is_parked(item):
        _log.error("%s: parked after %s attempts, outcome unresolved", transaction_id, attempts)
        return {"status": "PARKED"}
    return {"status": item["status"]}


def _finish(services: Services, transaction_id: str, timestamp: int) -> dict[str, Any]:
    item = services.repo.require(transaction_id, timestamp)
    item = drain(services, item)
    return {"status": item["status"]}


@dataclass
class SweepResult:
    scanned_partitions: int = 0
    candidates: int = 0
    failed: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    errors: int = 0
    complete: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned_partitions": self.scanned_partitions,
            "candidates": self.candidates,
            "failed": list(self.failed),
            "redriven": list(self.redriven),
            "errors": self.errors,
            "complete": self.complete,
        }


def sweep(
    services: Services, now: int | None = None, time_left: Callable[[], float] | None = None
) -> SweepResult:
    """Return transactions stuck past the workflow budget to the failed path; drain owed outboxes.

    Reads only the last ``sweep_lookback_days`` days of the by-day index (every shard), never the
    table. A PENDING/VALIDATING/SETTLING transaction unchanged for ``stuck_after_seconds`` (a lost
    StartExecution, a workflow that died, an expired settlement lease) is failed at exactly the
    version found, which queues it for the retry consumer. One that finished but still owes a
    stream message or notification has its outbox drained.
    """
    settings = services.settings
    at = services.clock.now_ms() if now is None else now
    cutoff = at - settings.stuck_after_seconds * 1000
    result = SweepResult()
    for days_back in range(settings.sweep_lookback_days, -1, -1):
        day = day_from_ms(at - days_back * 86_400_000)
        for key in day_shard_keys(day, settings.day_shards):
            if time_left is not None and time_left() < _SWEEP_MARGIN_S:
                result.complete = False
                return result
            result.scanned_partitions += 1
            found = services.repo.stale_candidates(key, cutoff, iso_from_ms(cutoff))
            result.candidates += len(found)
            for candidate in found:
                try:
                    _sweep_one(services, candidate, at, cutoff, result)
                except Exception:  # one bad item must not stop the sweep; counted and retried next run
                    _log.warning("sweep: %s failed", candidate.get("transaction_id"), exc_info=True)
                    result.errors += 1
    return result


def _sweep_one(
    services: Services, candidate: Mapping[str, Any], at: int, cutoff: int, result: SweepResult
) -> None:
    item = services.repo.require(str(candidate["transaction_id"]), int(candidate["timestamp"]))
    transaction_id = str(item["transaction_id"])
    if item["status"] in FAILABLE:
        if ms_from_iso(str(item.get("updated_at") or "")) >= cutoff or (
            item["status"] == Status.SETTLING and lease_live(item, at)
        ):
            return  # moved since the index was read, or someone holds the attempt
        outcome = failure_step(
            services,
            transaction_id,
            int(item["timestamp"]),
            {"Error": "Sweeper.Stuck", "Cause": f"unchanged in {item['status']} past the workflow budget"},
            actor="sweeper",
            enqueue=True,
            attempt=int(item.get("attempts") or 1),
            expected_version=int(item.get("version") or 0),
        )
        if outcome["recorded"]:
            result.failed.append(transaction_id)
        return
    if (
        item["status"] == Status.FAILED
        and not (is_final(item) or is_parked(item))
        and not item.get("outbox")
        and ms_from_iso(str(item.get("updated_at") or "")) < cutoff
        and not lease_live(item, at)
    ):
        # FAILED, nothing owed, unchanged past the budget: its retry message was lost or
        # dead-lettered. Queue it again; the retry budget bounds how often this can happen.
        services.sqs.send_message(
            QueueUrl=services.settings.failed_queue_url, MessageBody=retry_message(item)
        )
        result.redriven.append(transaction_id)
        return
    item = drain(services, item)
    result.redriven.append(transaction_id)
