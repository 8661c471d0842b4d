"""Shared parsing for the Step Functions task handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payments import ids
from payments.errors import DomainError
from payments.handlers._runtime import logger


class InvalidWorkflowInput(DomainError):
    """The task input has no usable transaction id (a wiring error: not retried usefully)."""


def transaction_ref(event: Any) -> tuple[str, int]:
    """(transaction_id, timestamp) from a task input ``{"transaction_id", "timestamp", ...}``."""
    source: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
    if "transaction_id" not in source and isinstance(source.get("state"), Mapping):
        source = source["state"]
    transaction_id = source.get("transaction_id")
    if not isinstance(transaction_id, str) or not ids.is_transaction_id(transaction_id):
        raise InvalidWorkflowInput("task input has no valid transaction_id")
    raw_ts = source.get("timestamp")
    try:
        timestamp = int(raw_ts) if raw_ts is not None else ids.timestamp_of(transaction_id)
    except (TypeError, ValueError):
        timestamp = ids.timestamp_of(transaction_id)
    logger.append_keys(transaction_id=transaction_id)
    logger.set_correlation_id(transaction_id)
    return transaction_id, timestamp
