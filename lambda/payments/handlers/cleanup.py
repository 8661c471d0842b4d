"""03:00 UTC retention job:
``{"older_than_days": 90, "archive": true, "dry_run": false, "backfill_ttl": false}``.

A retention below the deployed one (``CLEANUP_RETENTION_DAYS``) is refused unless the event says
``"force": true`` — the rule ``ops cleanup --force`` applies (``payments.jobs.retention``).

Thin entry point over ``payments.jobs.cleanup`` (the code behind ``ops cleanup``). A missing
``dry_run`` means a dry run: deleting needs the explicit ``false`` the schedule sends. The job stops
a minute before the Lambda timeout and reports ``complete: false``; the next run resumes.
It takes the same lock as ``ops cleanup``: when another run holds it (a duplicate delivery, an
operator's run), this invocation does nothing and says so (``skipped``), without failing.
"""

from __future__ import annotations

from typing import Any

from payments.handlers._runtime import count, entrypoint, logger, remaining_seconds
from payments.jobs import runtime as jobs
from payments.jobs.cleanup import DEFAULT_SEGMENTS, CleanupResult, run_cleanup
from payments.jobs.lock import LockHeld
from payments.jobs.retention import check_retention

SAFETY_MARGIN_S = 60


@entrypoint("cleanup")
def handler(event: Any, context: Any) -> dict[str, Any]:
    payload = event if isinstance(event, dict) else {}
    older_than_days = payload.get("older_than_days", 90)
    if not isinstance(older_than_days, int) or isinstance(older_than_days, bool) or older_than_days < 1:
        raise ValueError("older_than_days must be a positive integer")
    segments = payload.get("segments", DEFAULT_SEGMENTS)
    if segments is not None and (not isinstance(segments, int) or isinstance(segments, bool)):
        raise ValueError("segments must be an integer")
    archive = jobs.flag(payload, "archive", True)
    config = jobs.settings()
    check_retention(older_than_days, config.retention_days, force=jobs.flag(payload, "force", False))
    remaining = remaining_seconds(context)
    logger.set_correlation_id(f"cleanup-{older_than_days}d")
    try:
        owner = (
            f"lambda:{getattr(context, 'function_name', 'cleanup')}:{getattr(context, 'aws_request_id', '?')}"
        )
        result = _run(payload, config, older_than_days, segments, archive, remaining, owner)
    except LockHeld as exc:
        logger.warning("another cleanup holds the lock; skipped", extra={"owner": exc.owner})
        return {"skipped": "locked", "lock_owner": exc.owner, "lease_expires_ms": exc.lease_expires_ms}
    summary = result.to_dict()
    count("CleanupDeleted", result.deleted)
    count("CleanupArchived", result.archived)
    count("CleanupTtlSet", result.ttl_set)
    count("CleanupUnfinishedRows", result.unfinished)
    if result.complete:
        logger.info("cleanup finished", extra={"cleanup": summary})
    else:
        logger.warning("cleanup stopped before the timeout; the next run resumes", extra={"cleanup": summary})
    return summary


def _run(
    payload: dict[str, Any],
    config: jobs.JobSettings,
    older_than_days: int,
    segments: int | None,
    archive: bool,
    remaining: float | None,
    owner: str,
) -> CleanupResult:
    return run_cleanup(
        jobs.client("dynamodb"),
        config.table,
        older_than_days=older_than_days,
        s3_client=jobs.client("s3") if archive else None,
        bucket=config.archive_bucket if archive else None,
        archive=archive,
        backfill_ttl=jobs.flag(payload, "backfill_ttl", False),
        segments=segments,
        dry_run=jobs.flag(payload, "dry_run", True),
        time_budget_s=None if remaining is None else max(0.0, remaining - SAFETY_MARGIN_S),
        lock_owner=owner,
    )
