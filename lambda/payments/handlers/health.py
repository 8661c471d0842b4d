"""GET /health: healthy | degraded (200) or unhealthy (503, and an alert is published)."""

from __future__ import annotations

from typing import Any

from payments import notify
from payments.config import get_settings
from payments.handlers._api import guarded, respond
from payments.handlers._runtime import count, entrypoint, health_checker, logger, services
from payments.health import UNHEALTHY
from payments.responses import HttpRequest, parse_event


def _check(request: HttpRequest) -> dict[str, Any]:
    report = health_checker().run()
    status = report["status"]
    logger.info("health checked", extra={"health": status})
    count(f"Health_{status}")
    if status == UNHEALTHY:
        try:
            notify.publish_alert(
                services().sns,
                get_settings().alerts_topic_arn,
                f"payment-{get_settings().environment_suffix} health: {status}",
                report,
                "health.unhealthy",
            )
        except Exception as exc:
            logger.warning("health alert not published", extra={"error": type(exc).__name__})
    return respond(request, 503 if status == UNHEALTHY else 200, report)


@entrypoint("health")
def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event, getattr(context, "aws_request_id", None))
    logger.set_correlation_id(request.request_id)
    return guarded(request, lambda: _check(request))
