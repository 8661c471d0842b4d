"""Shared API plumbing: turn domain outcomes and exceptions into HTTP answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from payments import clients
from payments.config import get_settings
from payments.errors import ApiError, InternalError, ServiceUnavailable
from payments.handlers._runtime import count, logger
from payments.responses import HttpRequest, error_response, json_response
from payments.store.repository import Throttled


def respond(
    request: HttpRequest, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return json_response(status, body, request, get_settings().cors_allowed_origins, headers)


def guarded(request: HttpRequest, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``action``; map every failure to a defined answer (malformed input never 5xx)."""
    origins = get_settings().cors_allowed_origins
    try:
        return action()
    except ApiError as err:
        if err.status >= 500:
            logger.warning("request failed", extra={"code": err.code, "status": err.status})
        else:
            logger.info("request refused", extra={"code": err.code, "param": err.param, "status": err.status})
        count(f"Http{err.status}")
        return error_response(err, request, origins)
    except Throttled:
        logger.warning("dynamodb transaction throttled")
        count("Http503")
        return error_response(ServiceUnavailable(), request, origins)
    except Exception as exc:
        if clients.is_retryable(exc):
            logger.warning(
                "aws throttled or unavailable", extra={"error": clients.error_code(exc) or type(exc).__name__}
            )
            count("Http503")
            return error_response(ServiceUnavailable(), request, origins)
        # The exception text may quote input: log the type only, with the stack for debugging.
        logger.exception("unexpected error", extra={"error": type(exc).__name__})
        count("Http500")
        return error_response(InternalError(), request, origins)
