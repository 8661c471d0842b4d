"""Where things live in the archive bucket: the one place that names its prefixes and keys.

* ``transactions/YYYY/MM/DD/<id>.json``: a settled transaction (written by settlement);
* ``reports/YYYY-MM-DD.json``: a daily report;
* ``cleanup/<cutoff date>/<run id>/...``: the retention cleanup's archive objects (``*.jsonl``),
  their manifests (``*.manifest.json``) and the run's ``summary.json``.
"""

from __future__ import annotations

import datetime as dt

SETTLED_PREFIX = "transactions"
REPORTS_PREFIX = "reports"
ARCHIVE_PREFIX = "cleanup"  # the retention cleanup's archive
# Inside a cleanup run's folder:
OBJECT_SUFFIX = ".jsonl"  # an archive object
MANIFEST_SUFFIX = ".manifest.json"  # an archive object's manifest, beside it
SUMMARY_NAME = "summary.json"  # the run's own record


def settled_key(transaction_id: str, timestamp_ms: int) -> str:
    """The archive object of a settled transaction (by its creation day)."""
    created = dt.datetime.fromtimestamp(int(timestamp_ms) / 1000, tz=dt.UTC)
    return f"{SETTLED_PREFIX}/{created:%Y/%m/%d}/{transaction_id}.json"


def report_key(day: dt.date) -> str:
    return f"{REPORTS_PREFIX}/{day.isoformat()}.json"


def cleanup_prefix(cutoff_date: dt.date) -> str:
    """The prefix of every cleanup run with this cutoff date."""
    return f"{ARCHIVE_PREFIX}/{cutoff_date.isoformat()}/"


def manifest_key(object_key: str) -> str:
    """The manifest of the archive object ``object_key``."""
    return object_key.removesuffix(OBJECT_SUFFIX) + MANIFEST_SUFFIX
