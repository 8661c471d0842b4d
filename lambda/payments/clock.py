"""Time: each actor's clock (an injectable ``Clock``), epoch milliseconds, and the one UTC format.

Instants are epoch milliseconds and are compared as numbers; ``iso_from_ms`` is the one format
they are written in (``2026-11-23T12:00:00.123Z``) and ``ms_from_iso`` reads any ISO-8601 time back
(``datetime_from_iso`` for a ``datetime``).

The format is fixed-width (24 characters from year 1000 to 9999) and always UTC with a ``Z``, so
where only text can be compared (a DynamoDB filter on ``updated_at``) text order is time order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Clock:
    """An actor's clock: the system's by default; a test hands one actor a skewed or paused one."""

    read_ms: Callable[[], int] = now_ms

    def now_ms(self) -> int:
        return self.read_ms()


def iso_from_ms(epoch_ms: int) -> str:
    """``2026-11-23T12:00:00.123Z`` for an epoch-millisecond instant."""
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def iso_from_datetime(value: datetime) -> str:
    """The one format for a ``datetime`` (an SDK's answer, a parsed option); naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return iso_from_ms(round(value.timestamp() * 1000))


def ms_from_datetime(value: datetime) -> int:
    """The epoch-millisecond instant of a ``datetime`` (naive means UTC), sub-milliseconds dropped.
    In integers: ``int(value.timestamp() * 1000)`` is a millisecond short for some instants."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MILLISECOND


def datetime_from_iso(text: str) -> datetime:
    """An ISO-8601 instant (``2026-03-14T09:55:00Z``, an offset, or naive = UTC; surrounding blanks
    ignored) as an aware UTC ``datetime``; ValueError for anything else, an empty text included."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def ms_from_iso(text: str) -> int:
    """The epoch-millisecond instant of an ISO-8601 time (``Z`` or an offset); 0 for an empty text,
    so a missing time sorts first."""
    if not text:
        return 0
    return ms_from_datetime(datetime_from_iso(text))


def day_from_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
