"""02:00 UTC daily report job: ``{"date": "yesterday" | "YYYY-MM-DD", "upload": true}``.

Thin entry point over ``ops.core.report`` (the code behind ``ops report``).
"""

from __future__ import annotations

from typing import Any

from handlers._runtime import count, entrypoint, logger
from ops.core import jobs
from ops.core.report import build_report, resolve_day, upload_report


@entrypoint("report")
def handler(event: Any, context: Any) -> dict[str, Any]:
    payload = event if isinstance(event, dict) else {}
    day = resolve_day(payload.get("date"))  # "yesterday" is computed in UTC
    upload = jobs.flag(payload, "upload", True)
    config = jobs.settings()
    logger.set_correlation_id(f"report-{day.isoformat()}")
    report = build_report(jobs.client("dynamodb"), config.table, config.by_day_index, config.day_shards, day)
    location = upload_report(jobs.client("s3"), config.archive_bucket, report) if upload else None
    count("ReportTransactions", report.count)
    count("ReportFailedTransactions", report.failed)
    summary = {
        "date": day.isoformat(),
        "count": report.count,
        "failed": report.failed,
        "failure_rate": round(report.failure_rate, 6),
        "currencies": sorted(report.totals_minor),
        "queries": report.queries,
        "items_read": report.items_read,
        "uploaded_to": location,
    }
    logger.info("daily report built", extra={"report": summary})
    return summary
