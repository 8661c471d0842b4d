"""Masking card-number-looking digit runs: one contract for the logs (second line of defence) and
for what the ops CLI shows (stored items, messages, execution histories).

The code never logs events, bodies, tokens or keys; this catches what slips through (an exception
message quoting input, a library's debug line). Each caller names the top-level fields it writes
itself (``exempt``): never card data, but long digit runs that can pass the Luhn check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from payments.pan import contains_pan, mask_pans

PAN_PLACEHOLDER = "[REDACTED-PAN]"

# Keys the log formatter writes itself from the runtime (never from input): a timestamp such as
# "2026-11-29 16:25:01,123+0000" is a run of short digit groups that can pass the Luhn check, and a
# masked timestamp makes the line useless.
LOG_GENERATED_KEYS = frozenset(
    {
        "timestamp",
        "level",
        "location",
        "service",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
    }
)

# Fields the platform writes itself into items and messages (ids, epoch-ms timestamps, sort keys,
# counters): never card data, and a 13-19 digit epoch-ms value passes the Luhn check one time in ten.
RECORD_GENERATED_FIELDS = frozenset(
    {
        "transaction_id",
        "timestamp",
        "day_shard",
        "event_id",
        "at",
        "expires_at",
        "version",
        "attempt",
        "status",
        "from_status",
        "to_status",
        "lease_until",
        "failed_at",
    }
)


def _plain(number: Decimal) -> int | float:
    """A DynamoDB number as JSON would carry it."""
    return int(number) if number == number.to_integral_value() else float(number)


def _mask_number(number: int | float, in_place: bool) -> Any:
    text = str(number)
    if not contains_pan(text):
        return number
    return mask_pans(text, PAN_PLACEHOLDER) if in_place else PAN_PLACEHOLDER


def mask_document(node: Any, *, exempt: frozenset[str] = frozenset(), in_place: bool = False) -> Any:
    """``node`` (a decoded JSON value or DynamoDB item) with every PAN-looking string, key or number
    masked; top-level keys in ``exempt`` with a scalar value are kept as they are.

    Masking field by field (not the serialised line) keeps the output valid JSON when a number is
    masked. A number holding a PAN becomes the placeholder, or with ``in_place`` its digits with only
    the PAN replaced (the CLI shows what surrounds it).
    """
    if isinstance(node, str):
        return mask_pans(node, PAN_PLACEHOLDER)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int | float | Decimal):
        return _mask_number(_plain(node) if isinstance(node, Decimal) else node, in_place)
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in exempt and not isinstance(value, Mapping | list | tuple | set):
                out[key] = _plain(value) if isinstance(value, Decimal) else value
            else:
                out[mask_pans(str(key), PAN_PLACEHOLDER)] = mask_document(value, in_place=in_place)
        return out
    if isinstance(node, list | tuple | set):
        return [mask_document(v, in_place=in_place) for v in node]
    return mask_pans(str(node), PAN_PLACEHOLDER)


class PanMaskingFilter(logging.Filter):
    """Renders the record's message with PANs masked (attach to handlers or loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        masked = mask_pans(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set: the traceback is rendered once, masked.
            record.exc_text = mask_pans(logging.Formatter().formatException(record.exc_info))
        return True


def install(logger: Any) -> None:
    """Attach the filter to a std logger and all its handlers (idempotent).

    Handler filters see records propagated from child loggers too (logger filters do not).
    """
    targets = [logger, *getattr(logger, "handlers", [])]
    for target in targets:
        if not any(isinstance(f, PanMaskingFilter) for f in getattr(target, "filters", [])):
            target.addFilter(PanMaskingFilter())
