"""GET /health: healthy | degraded (200) or unhealthy (503).

The endpoint is public, so a request must not be an amplifier: the checked result is cached per
container for ``HEALTH_CACHE_SECONDS`` (default 10 s), and an alert is published only when the
status becomes unhealthy in this container, not on every unhealthy answer (WAF also gives /health
its own, lower per-IP rate rule)."""

from __future__ import annotations

import os
from typing import Any

from payments import names, notify
from payments.config import get_settings
from payments.handlers._api import guarded, respond
from payments.handlers._runtime import count, entrypoint, health_checker, logger, services
from payments.health import DEFAULT_CACHE_MS, UNHEALTHY, HealthCache
from payments.responses import HttpRequest, parse_event


def _cache_ms() -> int:
    try:
        return max(0, int(float(os.environ.get("HEALTH_CACHE_SECONDS", "")) * 1000))
    except ValueError:
        return DEFAULT_CACHE_MS


CACHE = HealthCache(ttl_ms=_cache_ms())


def _check(request: HttpRequest) -> dict[str, Any]:
    report, became_unhealthy = CACHE.get(lambda: health_checker().run())
    status = report["status"]
    if not report["cached"]:
        logger.info("health checked", extra={"health": status})
        count(f"Health_{status}")
    if became_unhealthy:
        try:
            notify.publish_alert(
                services().sns,
                get_settings().alerts_topic_arn,
                f"{names.environment(get_settings().environment_suffix)} health: {status}",
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
