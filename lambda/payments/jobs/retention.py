"""Retention: how short a retention may be, the cutoff it gives, and which rows it makes eligible.

The same rules serve the 03:00 UTC job and ``ops cleanup``:

* the minimum: a run that would delete rows younger than the deployed retention
  (``cleanup_retention_days``) is refused unless forced — in the Lambda and the CLI alike;
* the cutoff: 00:00 UTC of the day ``older_than_days`` before today;
* the classification: finished (COMPLETED, REJECTED) rows older than the cutoff are eligible;
  older rows in any other status are *unfinished* and never touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from payments.dynamo import value_of
from payments.jobs import JobError
from payments.states import TERMINAL
from payments.store.keys import is_lock_item

TTL_ATTRIBUTE = "expires_at"
BACKFILL_ATTRIBUTE = "ttl_backfill"  # set with the TTL: which run archived the row, and where
TERMINAL_STATUSES: tuple[str, ...] = tuple(sorted(s.value for s in TERMINAL))  # finished: eligible
DELETE = "delete"
BACKFILL_TTL = "backfill-ttl"


class RetentionTooShort(JobError):
    """The run would delete rows younger than the deployed retention (and was not forced)."""


def check_retention(older_than_days: int, deployed_days: int, *, force: bool = False) -> None:
    """Refuse a retention below the deployed one unless ``force``; below one day always."""
    if older_than_days < 1:
        raise JobError("--older-than must be at least 1 day")
    if older_than_days < deployed_days and not force:
        raise RetentionTooShort(
            f"--older-than {older_than_days}d is below the deployed retention of {deployed_days} days "
            "(cleanup_retention_days); pass --force if that is really meant"
        )


def cutoff_for(older_than_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """Start (00:00 UTC) of the day ``older_than_days`` before today: items strictly older go.

    Truncating to midnight makes the eligible set (and the archive prefix) the same for every
    run on the same day.
    """
    if older_than_days < 1:
        raise JobError("--older-than must be at least 1 day")
    today = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    day = today - dt.timedelta(days=older_than_days)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def parse_duration_days(text: str) -> int:
    """``"90d"``, ``"90"`` or ``"12w"`` → days."""
    value = text.strip().lower()
    units = {"d": 1, "w": 7}
    multiplier = 1
    if value and value[-1] in units:
        multiplier = units[value[-1]]
        value = value[:-1]
    if not value.isdigit() or int(value) < 1:
        raise JobError(f"invalid duration {text!r}: expected e.g. 90d, 12w or 90")
    return int(value) * multiplier


def classify(item: Mapping[str, Any], key_names: Sequence[str], cutoff_ms: int, mode: str) -> str:
    """ "eligible", "unfinished" or "skip" for a row read from the table (attribute values)."""
    if is_lock_item(item, key_names):
        return "skip"
    timestamp = value_of(item, "timestamp", "N")
    if timestamp is None or int(timestamp) >= cutoff_ms:
        return "skip"
    status = value_of(item, "status", "S")
    if status not in TERMINAL_STATUSES:
        return "unfinished"
    if mode == BACKFILL_TTL:
        return "skip" if TTL_ATTRIBUTE in item else "eligible"
    # Rows a TTL backfill archived and marked are TTL's to delete: archiving them again
    # would put them in a second object.
    return "skip" if BACKFILL_ATTRIBUTE in item else "eligible"


def expires_at(item: Mapping[str, Any], older_than_days: int) -> int:
    """The TTL (epoch seconds) of a row: its own age decides, so TTL removes exactly what the
    retention rule would have deleted (and DynamoDB's TTL deletes cost no write capacity)."""
    return int(value_of(item, "timestamp", "N")) // 1000 + older_than_days * 86_400
