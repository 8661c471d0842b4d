"""Second line of defence for logs: card-number-looking digit runs are masked on output.

The code never logs events, bodies, tokens or keys; this catches what slips through
(an exception message quoting input, a library's debug line).
"""

from __future__ import annotations

import logging
from typing import Any

from payments.pan import contains_pan, mask_pans

PAN_PLACEHOLDER = "[REDACTED-PAN]"


def mask_document(node: Any) -> Any:
    """``node`` (a decoded JSON value) with every PAN-looking string, key or number masked.

    Masking field by field (not the serialised line) keeps the output valid JSON when a number
    is masked, and lets callers exempt the fields they generate themselves.
    """
    if isinstance(node, str):
        return mask_pans(node, PAN_PLACEHOLDER)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int | float):
        return PAN_PLACEHOLDER if contains_pan(str(node)) else node
    if isinstance(node, dict):
        return {mask_pans(str(k), PAN_PLACEHOLDER): mask_document(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [mask_document(v) for v in node]
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
