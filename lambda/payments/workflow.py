"""The workflow's steps, which carry a created payment to a final status, and the two actors that
finish what the workflow could not: the retry consumer (``resume``) and the sweeper (``sweep``).

The Step Functions tasks and the retry consumer call the same functions here, so a
transaction resumed from the failed-transactions queue goes through exactly the code it
would have gone through in the workflow. Every step is safe to run twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payments import audit, fraud, ids, notify, pan, settlement, validation
from payments.clock import day_from_ms, iso_from_ms, now_ms
from payments.errors import DomainError, TransactionNotFound, TransitionConflict
from payments.processor import OutcomeUnknown, ProcessorResult
from payments.service import Services
from payments.shards import day_shard_keys
from payments.states import FAILABLE, Status, is_terminal
from payments.store.write import Written

_MAX_TRANSITION_ATTEMPTS = 4
_CAUSE_LIMIT = 500
_SWEEP_MARGIN_S = 5


# ---------------------------------------------------------------------------- outbox
#
# A transition records what must follow it in the same write (repository.transition): the
# audit-stream message in ``stream_outbox`` and the effects in ``outbox`` (``enqueue`` the retry,
# ``failed_notice``, ``outcome``). Every actor that touches the transaction afterwards drains what
# its role may send; the effect leaves the outbox only after it was acknowledged. Nothing that
# must happen depends on one process surviving between the commit and the send.

OUTBOX_ENQUEUE = "enqueue"
OUTBOX_FAILED_NOTICE = "failed_notice"
OUTBOX_OUTCOME = "outcome"
_STREAM_BATCH = 10


def publish_stream(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    """Send the transaction's pending audit-stream messages in version order, then prune them.

    Returns the item as stored after the prune (a new version)."""
    pending = sorted(item.get("stream_outbox") or [], key=lambda e: int(e.get("version") or 0))
    if not pending:
        return dict(item)
    transaction_id = str(item["transaction_id"])
    for start in range(0, len(pending), _STREAM_BATCH):
        chunk = pending[start : start + _STREAM_BATCH]
        audit.publish(
            services.sqs,
            services.settings.audit_queue_url,
            [audit.fifo_entry(transaction_id, e) for e in chunk],
        )
    return _stored(item, services.repo.prune_stream(dict(item), len(pending), int(pending[-1]["version"])))


def _stored(item: Mapping[str, Any], written: Written) -> dict[str, Any]:
    """The row a bookkeeping write left (or found), else ``item`` as the caller had it."""
    return written.item or dict(item)


def _retry_message(item: Mapping[str, Any]) -> str:
    stored = item.get("failure")
    failure: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
    return json.dumps(
        {
            "transaction_id": str(item["transaction_id"]),
            "timestamp": int(item["timestamp"]),
            "error": str(failure.get("error") or ""),
            "cause": str(failure.get("cause") or ""),
            "failed_at": str(failure.get("at") or ""),
        },
        separators=(",", ":"),
    )


def publish_retry(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    """The retry enqueue a FAILED transition owes (duplicates are harmless: the consumer is idempotent)."""
    if OUTBOX_ENQUEUE not in (item.get("outbox") or ()):
        return dict(item)
    if not is_terminal(str(item.get("status"))):  # finished meanwhile: nothing left to retry
        services.sqs.send_message(
            QueueUrl=services.settings.failed_queue_url, MessageBody=_retry_message(item)
        )
    return _stored(item, services.repo.clear_outbox(dict(item), OUTBOX_ENQUEUE))


def publish_notifications(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    """The SNS notifications a transition owes: one "transaction.failed" per payment, one outcome."""
    pending = set(item.get("outbox") or ())
    current = dict(item)
    if OUTBOX_FAILED_NOTICE in pending:
        # Only while it is still FAILED: once the retry finished it, the outcome says more.
        if item.get("status") == Status.FAILED:
            notify.publish_outcome(services.sns, services.settings, item)
        current = _stored(current, services.repo.clear_outbox(current, OUTBOX_FAILED_NOTICE))
    if OUTBOX_OUTCOME in pending and is_terminal(str(item.get("status"))):
        notify.publish_outcome(services.sns, services.settings, item)
        current = _stored(current, services.repo.clear_outbox(current, OUTBOX_OUTCOME))
    return current


def drain(services: Services, item: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
    """Send what ``item`` owes, in order: its audit-stream messages, the retry enqueue (unless
    ``retry=False``: the paths that finish a transaction never owe one), its notifications.
    Returns the item as stored after the acknowledgements."""
    current = publish_stream(services, item)
    if retry:
        current = publish_retry(services, current)
    return publish_notifications(services, current)


def _reload(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    return services.repo.require(str(item["transaction_id"]), int(item["timestamp"]))


def _transition_or_reload(
    services: Services, item: dict[str, Any], to_status: str, actor: str, **changes: Any
) -> tuple[dict[str, Any], bool]:
    """``repo.transition``: the updated item and True; after a TransitionConflict, the item as it
    is stored now and False (the caller's loop looks at it again)."""
    try:
        return services.repo.transition(item, to_status, actor, **changes), True
    except TransitionConflict:
        return _reload(services, item), False


# ---------------------------------------------------------------------------- workflow steps


def validate_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow Validate: PENDING → VALIDATING, re-check the stored record."""
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        reasons = validation.revalidate_stored(item)
        result = {"valid": not reasons, "reasons": reasons}
        if item["status"] == Status.PENDING:
            item, moved = _transition_or_reload(
                services,
                item,
                Status.VALIDATING,
                "validator",
                set_fields={"validation": result},
                detail={"valid": str(not reasons)},
                expected_attempt=1,
            )
            if not moved:
                continue
            item = publish_stream(services, item)
            return result
        # A re-run (after a time-out, or a duplicate execution): the stream may still owe messages.
        item = publish_stream(services, item)
        stored = item.get("validation")
        return dict(stored) if isinstance(stored, Mapping) else result
    raise TransitionConflict(f"{transaction_id}: could not enter VALIDATING")


def fraud_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow FraudCheck: score once, store the result with its reasons."""
    item = services.repo.require(transaction_id, timestamp)
    stored = item.get("fraud")
    if isinstance(stored, Mapping):
        return dict(stored)
    rules = services.fraud_rules()
    at = now_ms()
    result = fraud.assess(
        item,
        rules,
        lambda since, limit: services.repo.count_recent_for_customer(
            str(item["customer_id"]), since, transaction_id, limit
        ),
        at,
    ).as_dict()
    result["assessed_at"] = iso_from_ms(at)
    allowed = frozenset({Status.PENDING.value, Status.VALIDATING.value, Status.FAILED.value})
    if not services.repo.set_once(item, "fraud", result, allowed):
        again = services.repo.require(transaction_id, timestamp)
        if isinstance(again.get("fraud"), Mapping):
            return dict(again["fraud"])
        raise DomainError(f"{transaction_id}: fraud result not stored (status {again.get('status')})")
    return result


def checks_passed(item: Mapping[str, Any]) -> tuple[bool, list[str], str]:
    """(passed, reasons, source) from the stored validation and fraud results."""
    stored_validation = item.get("validation")
    if not isinstance(stored_validation, Mapping):
        reasons = validation.revalidate_stored(dict(item))
        stored_validation = {"valid": not reasons, "reasons": reasons}
    if not stored_validation.get("valid"):
        return False, list(stored_validation.get("reasons") or []), "validation"
    fraud_result = item.get("fraud")
    if not isinstance(fraud_result, Mapping):
        return False, ["fraud_check_missing"], "fraud"
    if fraud_result.get("decision") != "APPROVE":
        return False, list(fraud_result.get("reasons") or []), "fraud"
    return True, [], ""


def reject_step(
    services: Services, transaction_id: str, timestamp: int | None, actor: str = "notification"
) -> dict[str, Any]:
    """Workflow Reject: VALIDATING (or FAILED, on retry) → REJECTED, publish to payment-failed."""
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if status == Status.REJECTED:
            break
        if status not in (Status.VALIDATING, Status.FAILED):
            raise DomainError(f"{transaction_id}: cannot reject from {status}")
        passed, reasons, source = checks_passed(item)
        if passed:
            raise DomainError(f"{transaction_id}: checks passed, refusing to reject")
        item, moved = _transition_or_reload(
            services,
            item,
            Status.REJECTED,
            actor,
            set_fields={"rejection": {"source": source, "reasons": reasons}},
            detail={"source": source, "reasons": reasons},
            outbox=frozenset({OUTBOX_OUTCOME}),
        )
        if moved:
            break
    else:
        raise TransitionConflict(f"{transaction_id}: could not reject")
    item = drain(services, item, retry=False)
    return {"status": item["status"]}


class SettlementInProgress(DomainError):
    """Another actor holds the live lease of this attempt: try again after it expires."""


class SettlementNotOwned(DomainError):
    """The transaction is not this actor's to settle (another attempt, or FAILED for the retry path)."""


def _lease_fields(services: Services, owner: str) -> dict[str, Any]:
    return {"lease_owner": owner, "lease_until": now_ms() + services.settings.settlement_lease_seconds * 1000}


def _lease_live(item: Mapping[str, Any]) -> bool:
    return int(item.get("lease_until") or 0) >= now_ms()


def _acquire(services: Services, item: dict[str, Any], owner: str) -> dict[str, Any]:
    """Own the SETTLING attempt of ``item``: keep our lease, or take over an expired one."""
    if item.get("lease_owner") == owner:
        return item
    if _lease_live(item):
        raise SettlementInProgress(
            f"{item['transaction_id']}: attempt {item.get('attempts')} is being settled"
        )
    fields = _lease_fields(services, owner)
    taken = services.repo.take_over_lease(item, owner, int(fields["lease_until"]), now_ms())
    if not taken:
        raise SettlementInProgress(f"{item['transaction_id']}: lost the lease race")
    return taken.item


def settle_step(
    services: Services, transaction_id: str, timestamp: int | None, actor: str = "settlement"
) -> dict[str, Any]:
    """Workflow Settle (attempt 1 only): VALIDATING → SETTLING → COMPLETED | REJECTED.

    Never leaves FAILED (a new attempt is the retry consumer's), never touches another attempt.
    """
    owner = ids.new_owner_token()
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if is_terminal(status):
            item = publish_stream(services, item)
            return _settle_answer(item)
        if status == Status.FAILED or int(item.get("attempts") or 1) != 1:
            raise SettlementNotOwned(
                f"{transaction_id}: {status} attempt {item.get('attempts')} is the retry path's"
            )
        if status == Status.VALIDATING:
            if not checks_passed(item)[0]:
                raise DomainError(f"{transaction_id}: checks did not pass; not settling")
            item, moved = _transition_or_reload(
                services,
                item,
                Status.SETTLING,
                actor,
                set_fields=_lease_fields(services, owner),
                expected_attempt=1,
            )
            if not moved:
                continue
        elif status == Status.SETTLING:
            # A re-run of the same attempt: only once the first invocation's lease expired.
            item = _acquire(services, item, owner)
        else:
            raise DomainError(f"{transaction_id}: cannot settle from {status}")
        item = publish_stream(services, item)
        try:
            return settle_owned(services, item, owner, actor)
        except Exception:
            _release(services, item, owner)
            raise
    raise TransitionConflict(f"{transaction_id}: could not enter SETTLING")


def _release(services: Services, item: Mapping[str, Any], owner: str) -> None:
    """Our processor call is over (it raised): the next actor need not wait for the lease to expire."""
    with contextlib.suppress(Exception):
        services.repo.release_lease(dict(item), owner)


def start_attempt(services: Services, item: dict[str, Any], owner: str, actor: str) -> dict[str, Any]:
    """Retry consumer: FAILED → SETTLING as a new attempt, once the last attempt's lease expired."""
    try:
        return services.repo.transition(
            item,
            Status.SETTLING,
            actor,
            new_attempt=True,
            set_fields=_lease_fields(services, owner),
            lease_free_at=now_ms(),
        )
    except TransitionConflict:
        again = _reload(services, item)
        if again["status"] == Status.FAILED and _lease_live(again):
            raise SettlementInProgress(
                f"{item['transaction_id']}: the previous attempt may still be running"
            ) from None
        raise


def _settle_answer(item: Mapping[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": item["status"]}
    if item.get("processor_reference"):
        answer["processor_reference"] = item["processor_reference"]
    rejection = item.get("rejection")
    if isinstance(rejection, Mapping) and rejection.get("source") == "processor":
        answer["decline_code"] = (rejection.get("reasons") or ["card_declined"])[0]
    return answer


def _processor_result(
    services: Services, item: dict[str, Any], owner: str
) -> tuple[dict[str, Any], ProcessorResult]:
    """The processor's answer for ``item``: recorded, reconciled by lookup, or charged (once)."""
    recorded = settlement.recorded_result(item)
    if recorded is not None:
        return item, recorded
    request = settlement.charge_request(item)
    processor = services.processor
    result: ProcessorResult | None = None
    if item.get("charge_sent_at") is not None:
        # A charge may have been sent before (lost answer, crashed owner, expired key): ask first.
        result = processor.lookup(request)
    if result is None:
        if item.get("charge_sent_at") is None:
            marked = services.repo.mark_charge_sent(item, owner, now_ms())
            if not marked:
                raise SettlementNotOwned(f"{item['transaction_id']}: lease lost before charging")
            item = marked.item
        try:
            result = processor.charge(request)
        except OutcomeUnknown:
            result = processor.lookup(request)
            if result is None:
                raise
    stored = services.repo.record_outcome(item, settlement.outcome_fields(result, now_ms()))
    if not stored:
        # Another actor recorded the outcome first; it is the truth about the one charge.
        item = stored.item or _reload(services, item)
        recorded = settlement.recorded_result(item)
        if recorded is None:
            raise DomainError(f"{item['transaction_id']}: processor outcome not recorded")
        return item, recorded
    return stored.item, result


def settle_owned(services: Services, item: dict[str, Any], owner: str, actor: str) -> dict[str, Any]:
    """Finish the attempt whose lease ``owner`` holds: charge or reconcile, then COMPLETED | REJECTED."""
    item, result = _processor_result(services, item, owner)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        try:
            item = _conclude(services, item, result, owner, actor)
            break
        except TransitionConflict:
            current = _reload(services, item)
            if is_terminal(current["status"]):
                current = publish_stream(services, current)
                return _settle_answer(current)
            if (
                current["status"] == Status.SETTLING
                and current.get("lease_owner") == owner
                and current.get("attempts") == item.get("attempts")
            ):
                item = current  # another actor's bookkeeping write moved the version: still ours
                continue
            raise SettlementNotOwned(
                f"{item['transaction_id']}: attempt taken over ({current['status']}); the outcome is recorded"
            ) from None
    else:
        raise TransitionConflict(f"{item['transaction_id']}: could not conclude the attempt")
    item = publish_stream(services, item)
    return _settle_answer(item)


def _conclude(
    services: Services, item: dict[str, Any], result: ProcessorResult, owner: str, actor: str
) -> dict[str, Any]:
    """The owned attempt's final transition: archive and COMPLETED, or REJECTED (declined)."""
    if result.approved:
        fields = settlement.completed_fields(result)
        settlement.archive(
            services.s3,
            services.settings.archive_bucket,
            {**item, **fields, "status": Status.COMPLETED.value},
        )
        return services.repo.transition(
            item,
            Status.COMPLETED,
            actor,
            set_fields=fields,
            detail={"processor_reference": result.reference},
            outbox=frozenset({OUTBOX_OUTCOME}),
            lease_owner=owner,
        )
    return services.repo.transition(
        item,
        Status.REJECTED,
        actor,
        set_fields=settlement.declined_fields(result),
        detail={"decline_code": result.decline_code or ""},
        outbox=frozenset({OUTBOX_OUTCOME}),
        lease_owner=owner,
    )


def outcome_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow Notify: drain the outbox of a finished transaction (its outcome notification)."""
    item = services.repo.require(transaction_id, timestamp)
    status = item["status"]
    if status not in (Status.COMPLETED, Status.REJECTED, Status.FAILED):
        raise DomainError(f"{transaction_id}: no outcome to notify in status {status}")
    item = drain(services, item, retry=False)
    return {"status": status, "topic": notify.topic_for(services.settings, status).rsplit(":", 1)[-1]}


def sanitize_error(error: Mapping[str, Any] | None) -> tuple[str, str]:
    """(error, cause) from a Step Functions Catch payload, bounded and free of card numbers."""
    error = error or {}
    name = str(error.get("Error") or error.get("error") or "UnknownError")[:128]
    raw_cause = error.get("Cause") if "Cause" in error else error.get("cause")
    cause = ""
    if raw_cause:
        text = str(raw_cause)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            # Lambda error causes carry a stack trace; the type and message are enough here.
            text = f"{parsed.get('errorType', '')}: {parsed.get('errorMessage', '')}".strip(": ")
        cause = text
    return pan.mask_pans(name), pan.mask_pans(cause)[:_CAUSE_LIMIT]


def failure_step(
    services: Services,
    transaction_id: str,
    timestamp: int | None,
    error: Mapping[str, Any] | None,
    actor: str = "notification",
    enqueue: bool = True,
    attempt: int = 1,
    owner: str | None = None,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """RecordFailure: fail attempt ``attempt`` (only that one) → FAILED, queue it for retry.

    The workflow fails attempt 1 (its own); the retry consumer fails the attempt it owns
    (``owner`` = its lease); the sweeper fails exactly the version it found stale. A
    transaction already finished, already FAILED, or on another attempt is left alone; its
    outbox is drained either way, so a re-run re-sends what a lost acknowledgement left owed.
    ``enqueue=False`` is the retry consumer's: its own message is retried by SQS.
    """
    item = services.repo.require(transaction_id, timestamp)
    name, cause = sanitize_error(error)
    recorded = False
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if status not in FAILABLE or int(item.get("attempts") or 1) != attempt:
            break
        if expected_version is not None and int(item.get("version") or 0) != expected_version:
            break
        if owner is not None and status == Status.SETTLING and item.get("lease_owner") != owner:
            break
        at = now_ms()
        failure = {"error": name, "cause": cause, "at": iso_from_ms(at), "from_status": status}
        fields: dict[str, Any] = {"failure": failure}
        effects = {OUTBOX_ENQUEUE} if enqueue else set()
        if not item.get("first_failed_at"):
            # One "transaction.failed" per payment, not one per failed attempt.
            fields["first_failed_at"] = failure["at"]
            effects.add(OUTBOX_FAILED_NOTICE)
        item, recorded = _transition_or_reload(
            services,
            item,
            Status.FAILED,
            actor,
            set_fields=fields,
            detail={"error": name},
            outbox=frozenset(effects),
            expected_attempt=attempt,
            lease_owner=owner if status == Status.SETTLING else None,
        )
        if recorded:
            break
    item = drain(services, item)
    return {"status": item["status"], "recorded": recorded}


# ---------------------------------------------------------------------------- retry consumer and sweeper


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
    if abandoned and item["status"] in FAILABLE:
        failure_step(
            services,
            transaction_id,
            timestamp,
            {"Error": f"States.{abandoned}", "Cause": f"workflow execution {abandoned}"},
            actor="retry",
            enqueue=False,
            attempt=int(item.get("attempts") or 1),
        )
        item = services.repo.require(transaction_id, timestamp)
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
            item = _acquire(services, item, owner)
            owned_attempt = int(item.get("attempts") or 1)
            item = publish_stream(services, item)
            settle_owned(services, item, owner, "retry")
        return _finish(services, transaction_id, timestamp)
    except Exception as exc:
        if owned_attempt is not None and not isinstance(exc, SettlementInProgress):
            # Fail the attempt this actor owns (and only it); the caller reports the original error.
            _release(services, item, owner)
            with contextlib.suppress(Exception):
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
        raise


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
    at = now_ms() if now is None else now
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
                    _sweep_one(services, candidate, iso_from_ms(cutoff), result)
                except Exception:  # one bad item must not stop the sweep; counted and retried next run
                    result.errors += 1
    return result


def _sweep_one(services: Services, candidate: Mapping[str, Any], cutoff: str, result: SweepResult) -> None:
    item = services.repo.require(str(candidate["transaction_id"]), int(candidate["timestamp"]))
    transaction_id = str(item["transaction_id"])
    if item["status"] in FAILABLE:
        if str(item.get("updated_at") or "") >= cutoff or (
            item["status"] == Status.SETTLING and _lease_live(item)
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
    item = drain(services, item)
    result.redriven.append(transaction_id)
