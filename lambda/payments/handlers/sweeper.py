"""Scheduled sweeper (EventBridge Scheduler, every 5 minutes; the event payload is ignored).

Finds transactions left unfinished past the workflow's whole budget (a StartExecution that never
happened, a workflow that died, an expired settlement lease) through the by-day index and fails
them at the version found, which queues them for the retry consumer; finished transactions that
still owe an audit-stream message or a notification get their outbox drained. See
``payments.recovery.sweep``.
"""

from __future__ import annotations

from typing import Any

from payments.handlers._runtime import count, entrypoint, logger, remaining_seconds, services
from payments.recovery import sweep


@entrypoint("sweeper")
def handler(event: Any, context: Any) -> dict[str, Any]:
    logger.set_correlation_id("sweeper")
    has_clock = remaining_seconds(context) is not None
    result = sweep(services(), time_left=(lambda: remaining_seconds(context) or 0.0) if has_clock else None)
    summary = result.as_dict()
    count("SweeperFailed", len(result.failed))
    count("SweeperRedriven", len(result.redriven))
    count("SweeperErrors", result.errors)
    if result.failed or result.errors:
        logger.warning("sweeper returned stuck transactions to the failed path", extra={"sweep": summary})
    else:
        logger.info("sweeper found nothing stuck", extra={"sweep": summary})
    return summary
