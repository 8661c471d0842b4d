"""Idempotency keys for POST /transactions: the `Idempotency-Key` header, scoped to the API key.

The record's key is sha256(``<api key id>\\n<Idempotency-Key>``): keys are scoped to the
caller's API key and the stored key reveals neither. The record is written in the same
DynamoDB transaction as the transaction itself, so "key used" and "transaction exists"
can never disagree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from payments.clock import iso_from_ms
from payments.errors import InvalidRequest

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
ANONYMOUS_SCOPE = "anonymous"


def header_value(headers: Mapping[str, Any] | None) -> str | None:
    """The Idempotency-Key header, whatever its case (API Gateway keeps the client's case)."""
    for name, value in (headers or {}).items():
        if isinstance(name, str) and name.lower() == "idempotency-key":
            return value if isinstance(value, str) else None
    return None


def require_key(headers: Mapping[str, Any] | None) -> str:
    key = header_value(headers)
    if key is None or key == "":
        raise InvalidRequest(
            "idempotency_key_missing",
            f"POST /transactions requires an {HEADER} header (1-{MAX_LENGTH} printable ASCII characters).",
            HEADER,
        )
    if len(key) > MAX_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidRequest(
            "idempotency_key_invalid",
            f"{HEADER} must be 1-{MAX_LENGTH} printable ASCII characters.",
            HEADER,
        )
    return key


def scoped_key(scope: str | None, key: str) -> str:
    return hashlib.sha256(f"{scope or ANONYMOUS_SCOPE}\n{key}".encode()).hexdigest()


def record(
    scoped: str,
    request_hash: str,
    transaction_id: str,
    timestamp: int,
    response_status: int,
    response_body: dict[str, Any],
    now_ms: int,
    ttl_hours: int,
) -> dict[str, Any]:
    return {
        "idempotency_key": scoped,
        "request_hash": request_hash,
        "transaction_id": transaction_id,
        "timestamp": timestamp,
        "response_status": response_status,
        "response_body": json.dumps(response_body, separators=(",", ":"), sort_keys=True),
        "created_at": iso_from_ms(now_ms),
        "expires_at": now_ms // 1000 + ttl_hours * 3600,
    }


def stored_response(item: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = json.loads(str(item["response_body"]))
    return int(item["response_status"]), body
