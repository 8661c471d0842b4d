"""Back-dated transaction items, written straight to the table (the API only creates today's)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from payments.shards import day_shard

from devkit.demo import Platform

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def transaction_id(at: dt.datetime) -> str:
    """``txn_`` + a 26-character ULID (48-bit ms time + 80 random bits), like the platform's ids."""
    value = (int(at.timestamp() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "txn_" + "".join(reversed(chars))


def put_transaction(
    platform: Platform,
    at: dt.datetime,
    *,
    amount_minor: int = 1999,
    currency: str = "USD",
    status: str = "COMPLETED",
) -> dict[str, Any]:
    txn = transaction_id(at)
    shards = int(platform.outputs.get("day_shard_count") or 16)
    stamp = at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    item = {
        "transaction_id": txn,
        "timestamp": int(at.timestamp() * 1000),
        "day_shard": day_shard(txn, int(at.timestamp() * 1000), shards),
        "created_at": stamp,
        "updated_at": stamp,
        "status": status,
        "merchant_id": "m_backdated",
        "customer_id": "c_backdated",
        "amount_minor": amount_minor,
        "currency": currency,
        "payment_method_type": "card",
        "payment_method_token": "tok_backdated",
        "attempts": 1,
        "version": 3,
    }
    platform.table("transactions").put_item(Item=item)
    return item


def days_ago(days: int, hour: int = 12) -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=days)
