"""The partition key of the transactions table's ``by-day`` index: ``YYYY-MM-DD#NN``.

One UTC day is spread over ``DAY_SHARDS`` partitions (the ``day_shard_count`` variable, 1-100) so a
busy day's writes do not exceed one partition's throughput. A transaction's shard is the SHA-256
of its id modulo the shard count; ``NN`` is the shard number with at least two digits. Intake
writes the key, the sweeper and the daily report query it; all of them build it here.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from payments.clock import day_from_ms

# The day_shard_count variable's upper bound: no writer uses more shards, so querying shards
# 0..MAX_DAY_SHARDS-1 finds every row of a day whatever count wrote it.
MAX_DAY_SHARDS = 100
SEPARATOR = "#"


def shard_of(transaction_id: str, shards: int) -> int:
    """The shard (``0..shards-1``) a transaction's by-day entry is written to."""
    if shards < 1:
        raise ValueError("the by-day index needs at least one shard")
    return int(hashlib.sha256(transaction_id.encode("ascii")).hexdigest(), 16) % shards


def shard_suffix(shard: int) -> str:
    """``#NN``: the part of the key after the day (two digits minimum, never more padding)."""
    return f"{SEPARATOR}{shard:02d}"


def day_shard_key(day: dt.date | str, shard: int) -> str:
    """``YYYY-MM-DD#NN`` for a UTC day (a date or its ISO text) and a shard number."""
    text = day if isinstance(day, str) else day.isoformat()
    return text + shard_suffix(shard)


def day_shard(transaction_id: str, timestamp_ms: int, shards: int) -> str:
    """The by-day key intake writes for a transaction created at ``timestamp_ms``."""
    return day_shard_key(day_from_ms(timestamp_ms), shard_of(transaction_id, shards))


def day_shard_keys(day: dt.date | str, shards: int) -> list[str]:
    """Every key of one day, shards ``0..shards-1``: what a reader queries to see the whole day."""
    if shards < 1:
        raise ValueError("the by-day index needs at least one shard")
    return [day_shard_key(day, n) for n in range(shards)]


def parse_day_shard(key: str) -> tuple[dt.date, int]:
    """``(day, shard)`` of a ``YYYY-MM-DD#NN`` key (raises ValueError when malformed)."""
    day, separator, shard = key.rpartition(SEPARATOR)
    if not separator or not shard.isdigit():
        raise ValueError(f"not a by-day key: {key!r}")
    return dt.date.fromisoformat(day), int(shard)
