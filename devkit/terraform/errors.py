"""TerraformError and the reading of terraform's error output: ``Error:`` blocks, transient errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


class TerraformError(RuntimeError):
    """A terraform command failed, timed out, or its environment is unusable.

    ``blocks`` holds the ``Error:`` diagnostics (summary, resource, detail) terraform printed;
    ``log_path`` the file that keeps the failed command's full output.
    """

    def __init__(
        self, message: str, *, blocks: list[str] | None = None, log_path: Path | None = None
    ) -> None:
        super().__init__(message)
        self.blocks = blocks or []
        self.log_path = log_path


# Provider errors that mean "the local connection dropped", not "the request was wrong".
TRANSIENT_ERRORS: tuple[str, ...] = (
    "use of closed network connection",
    "connection reset by peer",
    "connection refused",
    "unexpected EOF",
    "timeout awaiting response headers",
)


def is_transient(message: str) -> bool:
    return any(marker in message for marker in TRANSIENT_ERRORS)


_BOX_PREFIX_RE = re.compile(r"^[\u2502\u2575\u2577] ?", re.M)
_FAILED_CALL_RE = re.compile(r"operation error ([\w\s.-]+?: \w+)")


def error_blocks(output: str) -> list[str]:
    """The ``Error:`` diagnostics in terraform's output: each block from its summary line to the end
    of its detail (a blank-line-separated paragraph run, or the diagnostic box when colour is on)."""
    text = _BOX_PREFIX_RE.sub("", output)
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("Error: "):
            if current:
                blocks.append("\n".join(current).strip())
            current = [line]
        elif current is not None:
            if line.startswith(("Warning: ", "Plan: ", "Apply complete", "Destroy complete")):
                blocks.append("\n".join(current).strip())
                current = None
            else:
                current.append(line)
    if current:
        blocks.append("\n".join(current).strip())
    return blocks


def failed_calls(blocks: Iterable[str]) -> list[str]:
    """``Service: Operation`` of each AWS call named in the error blocks (what a retry is about)."""
    calls: list[str] = []
    for block in blocks:
        calls.extend(" ".join(match.split()) for match in _FAILED_CALL_RE.findall(block))
    return calls
