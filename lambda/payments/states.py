"""Transaction lifecycle (docs/interfaces.md, "Status lifecycle"), and the workflow execution
statuses the platform acts on. Every status name the code compares or writes is defined here.

Every change of ``status`` is one of the transitions below, written as a conditional
update on the current status: a step that runs twice, late or out of order cannot move a
transaction backwards or through the same transition twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "PENDING"
    VALIDATING = "VALIDATING"
    SETTLING = "SETTLING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.VALIDATING, Status.FAILED}),
    Status.VALIDATING: frozenset({Status.REJECTED, Status.SETTLING, Status.FAILED}),
    Status.SETTLING: frozenset({Status.COMPLETED, Status.REJECTED, Status.FAILED}),
    # Only the retry consumer leaves FAILED: a new attempt, or a rejection when the
    # re-run checks refuse the payment.
    # FAILED → FAILED is the retry budget's end: the same status, made final (``final`` set).
    Status.FAILED: frozenset({Status.SETTLING, Status.REJECTED, Status.FAILED}),
    Status.COMPLETED: frozenset(),
    Status.REJECTED: frozenset(),
}

TERMINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.REJECTED})
# States a failure can be recorded from (anything not finished and not already failed).
FAILABLE: frozenset[Status] = frozenset(
    s for s, targets in ALLOWED_TRANSITIONS.items() if Status.FAILED in targets and s != Status.FAILED
)


class ExecutionStatus(StrEnum):
    """Step Functions statuses of a payment workflow execution that ended without succeeding
    (not statuses of a transaction)."""

    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"


# Executions that ended without succeeding: what the safety net's EventBridge rule forwards to the
# retry consumer, and what ``ops status`` and ``ops trace`` report. In the order they are shown.
UNSUCCESSFUL_EXECUTIONS: tuple[ExecutionStatus, ...] = tuple(ExecutionStatus)


def can_transition(current: str, target: str) -> bool:
    try:
        return Status(target) in ALLOWED_TRANSITIONS[Status(current)]
    except ValueError:
        return False


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def is_final(item: Mapping[str, Any]) -> bool:
    """Whether ``item`` ended: COMPLETED, REJECTED, or FAILED at the end of its retry budget."""
    status = str(item.get("status"))
    return status in TERMINAL or (status == Status.FAILED and bool(item.get("final")))


def is_parked(item: Mapping[str, Any]) -> bool:
    """FAILED past its retry budget with a charge that may have been made: a human decides."""
    return str(item.get("status")) == Status.FAILED and bool(item.get("parked"))


class InvalidTransition(ValueError):
    """A transition the lifecycle does not allow (a programming error, not a race)."""


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(f"{current} -> {target} is not an allowed transition")
