"""Where things live in the archive bucket: the one place that names its prefixes and keys.

* ``transactions/YYYY/MM/DD/<id>.json``: a settled transaction (written by settlement);
* ``reports/YYYY-MM-DD.json``: a daily report;
* ``cleanup/<cutoff date>/<run id>/...``: the retention cleanup's archive objects, manifests and
  run summaries.
"""

from __future__ import annotations

import datetime as dt

SETTLED_PREFIX = "transactions"
REPORTS_PREFIX = "reports"
ARCHIVE_PREFIX = "cleanup"  # the retention cleanup's archive


def settled_key(transaction_id: str, timestamp_ms: int) -> str:
    """The archive object of a settled transaction (by its creation day)."""
    created = dt.datetime.fromtimestamp(int(timestamp_ms) / 1000, tz=dt.UTC)
    return f"{SETTLED_PREFIX}/{created:%Y/%m/%d}/{transaction_id}.json"


def report_key(day: dt.date) -> str:
    return f"{REPORTS_PREFIX}/{day.isoformat()}.json"


def cleanup_prefix(cutoff_date: dt.date) -> str:
    """The prefix of every cleanup run with this cutoff date."""
    return f"{ARCHIVE_PREFIX}/{cutoff_date.isoformat()}/"
