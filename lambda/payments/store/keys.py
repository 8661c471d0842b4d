"""Row keys of the transactions table: a transaction's key, the cleanup lock's, and the one-string
form (``transaction_id|timestamp``) that archives, manifests and ``ops trace`` name rows by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

HASH_KEY = "transaction_id"
RANGE_KEY = "timestamp"
KEY_NAMES: tuple[str, str] = (HASH_KEY, RANGE_KEY)
LOCK_ID = "ops-lock#cleanup"


def transaction_key(transaction_id: str, timestamp: int) -> dict[str, Any]:
    """The DynamoDB key of a transaction row."""
    return {HASH_KEY: {"S": transaction_id}, RANGE_KEY: {"N": str(int(timestamp))}}


def key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """The key of a decoded transaction item."""
    return transaction_key(str(item[HASH_KEY]), int(item[RANGE_KEY]))


def row_id(transaction_id: str, timestamp: int) -> str:
    """A row's key as one string: ``transaction_id|timestamp``."""
    return f"{transaction_id}|{int(timestamp)}"


def key_id(key_names: Sequence[str], item: Mapping[str, Any]) -> str:
    """The one-string key (``hash|range``) of a row in attribute-value form."""
    parts = []
    for name in key_names:
        ((_type, value),) = item[name].items()
        parts.append(str(value))
    return "|".join(parts)


def key_names_of(description: Mapping[str, Any]) -> list[str]:
    """The table's key attribute names (DescribeTable's ``Table``), hash key first."""
    return [k["AttributeName"] for k in sorted(description["KeySchema"], key=lambda k: k["KeyType"])]


def lock_key(key_names: Sequence[str]) -> dict[str, Any]:
    """The cleanup lock item's key in a table keyed like the transactions table (hash S, range N)."""
    key: dict[str, Any] = {key_names[0]: {"S": LOCK_ID}}
    if len(key_names) > 1:
        key[key_names[1]] = {"N": "0"}
    return key


def is_lock_item(item: Mapping[str, Any], key_names: Sequence[str]) -> bool:
    return item.get(key_names[0]) == {"S": LOCK_ID}
