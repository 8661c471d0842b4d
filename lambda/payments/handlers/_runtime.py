"""Per-container runtime shared by the handlers: logger, metrics, tracer and services.

Logs are Powertools JSON with a correlation id. Events, bodies, tokens and API keys are
never logged; as a second line of defence the formatter masks any card-number-looking
digit run in the final JSON line, and a filter does the same for plain records.

Tracing: Lambda, API Gateway and Step Functions active tracing record every request without
any code here. The X-Ray SDK (Powertools ``Tracer``: a ``## handler`` subsegment with
``ColdStart``/``Service`` annotations and one subsegment per AWS SDK or HTTPS call) is loaded only
when ``XRAY_SDK_SUBSEGMENTS`` is true: importing it and patching botocore costs more than the
rest of a cold start together.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from payments import clients, config, redaction
from payments.redaction import PanMaskingFilter

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

    from payments.health import HealthChecker
    from payments.service import Services

NAMESPACE = os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "PaymentPlatform"
# Opt-in for X-Ray SDK subsegments (see the module docstring); POWERTOOLS_TRACE_DISABLED still wins.
XRAY_SDK_ENV = "XRAY_SDK_SUBSEGMENTS"


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        # Field by field, the formatter's own keys kept: the line stays valid, readable JSON.
        masked = redaction.mask_document(dict(log), exempt=redaction.LOG_GENERATED_KEYS)
        return super().serialize(masked)


logger = Logger(logger_formatter=MaskingFormatter())
logger.addFilter(PanMaskingFilter())
metrics = Metrics(namespace=NAMESPACE)


@functools.cache
def _configure_process_logging() -> None:
    """Once per process, when the first handler is defined (not whenever this module is imported:
    a test or a tool importing it keeps its own logging)."""
    # Powertools writes the JSON line itself; propagating would print each record a second time
    # through the runtime's root handler, unformatted and unmasked.
    logging.getLogger(logger.name).propagate = False
    # Library loggers (botocore, urllib3) reach the root handlers: mask there as well.
    redaction.install(logging.getLogger())


def sdk_tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    """True when the function asks for X-Ray SDK subsegments (``XRAY_SDK_SUBSEGMENTS``)."""
    value = (os.environ if env is None else env).get(XRAY_SDK_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _tracer() -> Tracer | None:
    if not sdk_tracing_requested():
        return None
    from aws_lambda_powertools.tracing import Tracer  # noqa: PLC0415 - opt-in: loads the X-Ray SDK

    # Patches botocore (every client, created before or after) and http.client (processor calls).
    return Tracer()


# Built while the container initialises, so an opted-in function pays for the SDK in the init phase.
tracer = _tracer()

_lock = threading.Lock()
_services: Services | None = None
_cold = True


def services() -> Services:
    """The container's Services (clients built on first use, then reused while warm)."""
    global _services  # noqa: PLW0603 - one per container
    if _services is None:
        # Imported here: the scheduled jobs never build Services, and a module imported at cold
        # start is paid by every function that imports this runtime.
        from payments.service import Services  # noqa: PLC0415
        from payments.store.repository import Repository  # noqa: PLC0415

        with _lock:
            if _services is None:
                settings = config.get_settings()
                _services = Services(
                    settings=settings,
                    repo=Repository(settings, clients.dynamodb()),
                    sqs=clients.sqs(),
                    sns=clients.sns(),
                    s3=clients.s3(),
                    sfn=clients.stepfunctions(),
                    # Resolved on first use: only the fraud and settlement steps read parameters.
                    get_parameter=_get_parameter,
                )
    return _services


def _get_parameter(name: str, **options: Any) -> Any:
    return clients.parameters().get(name, **options)


def health_checker() -> HealthChecker:
    from payments.health import HealthChecker  # noqa: PLC0415 - the health function only

    return HealthChecker(config.get_settings(), clients.dynamodb(), clients.sqs(), clients.cloudwatch())


def reset(keep_clients: bool = False) -> None:
    """Forget settings, cached parameters, services and (unless kept) the AWS clients."""
    global _services  # noqa: PLW0603
    with _lock:
        _services = None
    if keep_clients:
        clients.forget_parameters()
    else:
        clients.reset()
    config.reset_settings()


def remaining_seconds(context: Any) -> float | None:
    """Seconds left in this invocation (the Lambda context's clock), None without one."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(getter):
        return None
    try:
        return float(getter()) / 1000
    except (TypeError, ValueError):
        return None


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def entrypoint(role: str) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
    """Wrap a handler: context keys and cold start on the logger, metrics flushed, traced.

    Tolerates a missing/partial Lambda context (the emulator harness invokes handlers
    directly). Correlation ids are set by the handler once it knows them.
    """

    _configure_process_logging()

    def decorate(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        traced = tracer.capture_lambda_handler(func, capture_response=False) if tracer else func

        @functools.wraps(func)
        def wrapper(event: Any, context: Any) -> Any:
            global _cold
            cold, _cold = _cold, False
            logger.clear_state()
            logger.append_keys(
                role=role,
                cold_start=cold,
                function_request_id=getattr(context, "aws_request_id", None),
            )
            try:
                return traced(event, context)
            finally:
                if metrics.metric_set:
                    metrics.flush_metrics()

        return wrapper

    return decorate
