"""The workflow's steps, which carry a created payment to a final status: validate, fraud check,
reject, record a failure, notify the outcome (settling is ``payments.settle``).

The Step Functions tasks and the retry consumer (``payments.recovery``) call the same functions,
so a transaction resumed from the failed-transactions queue goes through exactly the code it
would have gone through in the workflow. Every step is safe to run twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payments import fraud, notify, pan, validation
from payments.clock import iso_from_ms
from payments.errors import DomainError, TransitionConflict
from payments.outbox import OUTBOX_ENQUEUE, OUTBOX_OUTCOME, drain, publish_stream
from payments.service import Services
from payments.states import FAILABLE, Status

MAX_TRANSITION_ATTEMPTS = 4
_CAUSE_LIMIT = 500


def reload(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    return services.repo.require(str(item["transaction_id"]), int(item["timestamp"]))


def transition_or_reload(
    services: Services, item: dict[str, Any], to_status: str, actor: str, **changes: Any
) -> tuple[dict[str, Any], bool]:
    """``repo.transition``: the updated item and True; after a TransitionConflict, the item as it
    is stored now and False (the caller's loop looks at it again)."""
    try:
        return services.repo.transition(item, to_status, actor, **changes), True
    except TransitionConflict:
        return reload(services, item), False


def validate_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow Validate: PENDING → VALIDATING, re-check the stored record."""
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(MAX_TRANSITION_ATTEMPTS):
        reasons = validation.revalidate_stored(item)
        result = {"valid": not reasons, "reasons": reasons}
        if item["status"] == Status.PENDING:
            item, moved = transition_or_reload(
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
    at = services.clock.now_ms()
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
    for _ in range(MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if status == Status.REJECTED:
            break
        if status not in (Status.VALIDATING, Status.FAILED):
            raise DomainError(f"{transaction_id}: cannot reject from {status}")
        passed, reasons, source = checks_passed(item)
        if passed:
            raise DomainError(f"{transaction_id}: checks passed, refusing to reject")
        item, moved = transition_or_reload(
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
    for _ in range(MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if status not in FAILABLE or int(item.get("attempts") or 1) != attempt:
            break
        if expected_version is not None and int(item.get("version") or 0) != expected_version:
            break
        if owner is not None and status == Status.SETTLING and item.get("lease_owner") != owner:
            break
        at = services.clock.now_ms()
        # Not the lease's owner: a SETTLING attempt is abandoned only once its lease ran out (a live
        # lease is someone's charge or lookup in flight), and the write is conditioned on it.
        unowned_settling = owner is None and status == Status.SETTLING
        if unowned_settling and int(item.get("lease_until") or 0) >= at:
            break
        failure = {"error": name, "cause": cause, "at": iso_from_ms(at), "from_status": status}
        fields: dict[str, Any] = {"failure": failure}
        if not item.get("first_failed_at"):
            fields["first_failed_at"] = failure["at"]
        # A failed attempt is retried: it is not announced ("transaction.failed" is terminal only).
        effects = {OUTBOX_ENQUEUE} if enqueue else set()
        item, recorded = transition_or_reload(
            services,
            item,
            Status.FAILED,
            actor,
            set_fields=fields,
            detail={"error": name},
            outbox=frozenset(effects),
            expected_attempt=attempt,
            lease_owner=owner if status == Status.SETTLING else None,
            lease_free_at=at if unowned_settling else None,
        )
        if recorded:
            break
    item = drain(services, item)
    return {"status": item["status"], "recorded": recorded}
