"""02:00 UTC daily report job: ``{"date": "yesterday" | "YYYY-MM-DD", "upload": true}``.

Thin entry point over ``payments.jobs.report`` (the code behind ``ops report``): every shard any
deployment can write is queried, and an upload that would replace a stored report with a lower
count fails (the on-failure destination alerts) unless the payload says ``"force": true``.
"""

from __future__ import annotations

from typing import Any

from payments.handlers._runtime import count, entrypoint, logger
from payments.jobs import runtime as jobs
from payments.jobs.report import build_report, resolve_day, upload_report
from payments.shards import MAX_DAY_SHARDS


@entrypoint("report")
def handler(event: Any, context: Any) -> dict[str, Any]:
    payload = event if isinstance(event, dict) else {}
    day = resolve_day(payload.get("date"))  # "yesterday" is computed in UTC
    upload = jobs.flag(payload, "upload", True)
    force = jobs.flag(payload, "force", False)
    config = jobs.settings()
    logger.set_correlation_id(f"report-{day.isoformat()}")
    report = build_report(
        jobs.client("dynamodb"),
        config.table,
        config.by_day_index,
        MAX_DAY_SHARDS,
        day,
        writer_shards=config.day_shards,
    )
    if report.shards_beyond_writer:
        logger.warning(
            "rows in shards beyond DAY_SHARDS: the shard count was lowered; they are counted",
            extra={"shards": report.shards_beyond_writer},
        )
    if report.malformed_amounts:
        logger.warning(
            "rows without an integer amount_minor: counted, in no total",
            extra={"rows": report.malformed_amounts, "examples": list(report.malformed_examples)},
        )
    location = (
        upload_report(jobs.client("s3"), config.archive_bucket, report, force=force) if upload else None
    )
    count("ReportTransactions", report.count)
    count("ReportFailedTransactions", report.failed)
    summary = {
        "date": day.isoformat(),
        "as_of": report.as_of,
        "count": report.count,
        "failed": report.failed,
        "failure_rate": round(report.failure_rate, 6),
        "rejected": report.rejected,
        "rejection_rate": round(report.rejection_rate, 6),
        "currencies": sorted(report.totals_minor),
        "malformed_amounts": report.malformed_amounts,
        "queries": report.queries,
        "items_read": report.items_read,
        "uploaded_to": location,
    }
    logger.info("daily report built", extra={"report": summary})
    return summary
