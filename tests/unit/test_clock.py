"""payments.clock: the one UTC format, and the readers back to epoch milliseconds.

The sweeper's DynamoDB filter compares ``updated_at`` as text (``Repository.stale_candidates``):
that is exact only because the format is fixed-width UTC ending in ``Z``, which this file pins.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from payments.clock import (
    datetime_from_iso,
    iso_from_datetime,
    iso_from_ms,
    ms_from_datetime,
    ms_from_iso,
)

# From the epoch to 2100, with the edges of a second, a day and a year among them.
EDGES = [0, 999, 1000, 86_399_999, 86_400_000, 1_704_067_199_999, 1_704_067_200_000, 4_102_444_799_999]
INSTANTS = sorted({*EDGES, *random.Random(20).sample(range(4_102_444_800_000), 2000)})


def test_the_one_format_is_fixed_width_utc_so_text_order_is_time_order() -> None:
    texts = [iso_from_ms(ms) for ms in INSTANTS]
    assert {len(t) for t in texts} == {24}
    assert all(t.endswith("Z") and t[10] == "T" and t[19] == "." for t in texts)
    assert texts == sorted(texts)  # the sweeper's text filter sees the same order as the numbers
    assert [ms_from_iso(t) for t in texts] == INSTANTS


def test_datetimes_are_written_in_the_same_format_naive_meaning_utc() -> None:
    aware = dt.datetime(2026, 3, 14, 10, 55, 0, 123000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert iso_from_datetime(aware) == "2026-03-14T09:55:00.123Z"
    assert iso_from_datetime(dt.datetime(2026, 3, 14, 9, 55)) == "2026-03-14T09:55:00.000Z"
    assert ms_from_datetime(aware) == ms_from_iso("2026-03-14T09:55:00.123Z")
    assert ms_from_datetime(dt.datetime(1970, 1, 1, 0, 0, 1)) == 1000


@pytest.mark.parametrize(
    "text",
    ["2026-03-14T09:55:00Z", "2026-03-14T09:55:00z", " 2026-03-14T10:55:00+01:00 ", "2026-03-14T09:55:00"],
)
def test_any_iso_instant_reads_back_as_utc(text: str) -> None:
    expected = dt.datetime(2026, 3, 14, 9, 55, tzinfo=dt.UTC)
    assert datetime_from_iso(text) == expected
    assert datetime_from_iso(text).tzinfo == dt.UTC
    assert ms_from_iso(text) == ms_from_datetime(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "14/03/2026 09:55"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        datetime_from_iso(text)


def test_a_missing_time_sorts_first() -> None:
    assert ms_from_iso("") == 0
