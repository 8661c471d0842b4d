"""Terraform's machine-readable UI (``plan|apply|destroy -json``): one JSON message per line.

Every message has ``type``, ``@level`` and ``@message`` (the line terraform would print for a
human). What this module uses:

- ``version``: the first message of each run;
- ``refresh_start`` / ``refresh_complete``: a resource's state being read before the plan;
- ``planned_change`` (``change.action``: create, update, delete, replace, read, ...);
- ``change_summary`` (``changes``: add, change, remove, import, operation plan|apply|destroy):
  after the plan (the total of changes) and after the apply (what was done);
- ``apply_start`` / ``apply_complete`` / ``apply_errored`` (``hook.resource.addr``, ``hook.action``);
- ``diagnostic`` (``diagnostic``: severity, summary, detail, address, range, snippet).

:func:`human_text` turns a message back into terraform's human output (the log files keep that)
and :func:`render_diagnostic` an error into the same ``Error:`` block the human UI prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Actions that make an apply_complete (a replacement is a delete and a create: two changes).
_COUNTED_ACTIONS = frozenset({"create", "update", "delete"})


def parse_message(line: str) -> dict[str, Any] | None:
    """The UI message on ``line``, or None for anything that is not one (plain text, blank)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if isinstance(message, dict) and isinstance(message.get("type"), str):
        return message
    return None


def render_diagnostic(diagnostic: Mapping[str, Any]) -> str:
    """A ``diagnostic`` as terraform's human UI prints it without colour.

    ``Error: <summary>``, then where (``with <address>,`` / ``on <file> line <n>, in <context>:``,
    the source line and the values of the expressions involved), then the detail.
    """
    severity = str(diagnostic.get("severity") or "error").capitalize()
    lines = [f"{severity}: {diagnostic.get('summary', '')}", ""]
    address = diagnostic.get("address")
    source = diagnostic.get("range") or {}
    snippet = diagnostic.get("snippet") or {}
    if address or source:
        if address:
            lines.append(f"  with {address},")
        if source:
            where = f"  on {source.get('filename', '?')} line {source.get('start', {}).get('line', '?')}"
            if snippet.get("context"):
                where += f", in {snippet['context']}"
            lines.append(where + ":")
        if snippet.get("code") is not None:
            first = int(snippet.get("start_line") or source.get("start", {}).get("line") or 1)
            for offset, code in enumerate(str(snippet["code"]).split("\n")):
                lines.append(f"{first + offset:4d}: {code}")
            values = snippet.get("values") or []
            if values:
                lines.append("    \u251c" + "\u2500" * 16)
                lines.extend(f"    \u2502 {v.get('traversal', '')} {v.get('statement', '')}" for v in values)
        lines.append("")
    detail = str(diagnostic.get("detail") or "").rstrip()
    if detail:
        lines.append(detail)
    return "\n".join(lines).rstrip()


def human_text(message: Mapping[str, Any]) -> str:
    """What terraform's human UI prints for ``message`` (a diagnostic as its whole block)."""
    if message.get("type") == "diagnostic" and isinstance(message.get("diagnostic"), Mapping):
        return "\n" + render_diagnostic(message["diagnostic"]) + "\n"
    return str(message.get("@message", ""))


def error_diagnostics(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``Error:`` blocks of the error diagnostics among ``messages``."""
    return [
        render_diagnostic(m["diagnostic"])
        for m in messages
        if m.get("type") == "diagnostic"
        and isinstance(m.get("diagnostic"), Mapping)
        and m["diagnostic"].get("severity") == "error"
    ]


def _resource(message: Mapping[str, Any], key: str) -> tuple[str, str]:
    body = message.get(key) or {}
    return str((body.get("resource") or {}).get("addr", "")), str(body.get("action", ""))


@dataclass
class ApplyProgress:
    """Resource changes done out of the total, from an apply's (or destroy's) UI messages.

    A change is a create, update or delete; a replacement counts twice, as in terraform's own
    ``Plan: N to add, M to change, K to destroy``. The total is known once the plan's
    ``change_summary`` arrived (None before). A second run (terraform re-run after a transient
    error) continues the count: what the first run finished stays done.
    """

    phase: str = "starting"  # refreshing, planning, applying, complete, failed
    total: int | None = None
    done: int = 0
    failed: int = 0
    refreshed: int = 0
    current: str = ""
    errors: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    runs: int = 0
    _planned: int = 0
    _carried: int = 0

    @property
    def finished(self) -> int:
        """Changes that ended, successfully or not (what the bar shows as completed)."""
        return self.done + self.failed

    def feed(self, message: Mapping[str, Any]) -> bool:
        """Take one UI message; True when the progress changed."""
        handler = self._HANDLERS.get(str(message.get("type")))
        return handler(self, message) if handler is not None else False

    def _on_version(self, _message: Mapping[str, Any]) -> bool:
        # A re-run plans only what is left: the changes done so far stay done.
        self._carried = self.done
        self.runs += 1
        self._planned = 0
        self.failed = 0
        self.phase = "starting"
        return True

    def _on_refresh(self, message: Mapping[str, Any]) -> bool:
        self.phase = "refreshing"
        if message.get("type") == "refresh_complete":
            self.refreshed += 1
        return True

    def _on_planned_change(self, message: Mapping[str, Any]) -> bool:
        _addr, action = _resource(message, "change")
        self.phase = "planning"
        self._planned += 2 if action == "replace" else int(action in _COUNTED_ACTIONS)
        return True

    def _on_change_summary(self, message: Mapping[str, Any]) -> bool:
        changes = message.get("changes") or {}
        counted = sum(int(changes.get(key) or 0) for key in ("add", "change", "remove"))
        if changes.get("operation") == "plan":
            self.total = self._carried + counted
            self.phase = "applying"
        else:
            self.summary = dict(changes)
            self.done = self._carried + counted
            self.total = max(self.total or 0, self.finished)
            self.phase = "complete"
        return True

    def _on_apply(self, message: Mapping[str, Any]) -> bool:
        kind = message.get("type")
        addr, action = _resource(message, "hook")
        self.phase = "applying"
        self.current = addr
        if action in _COUNTED_ACTIONS:
            if kind == "apply_complete":
                self.done += 1
            elif kind == "apply_errored":
                self.failed += 1
        if self.total is None and self._planned:
            self.total = self._carried + self._planned
        return True

    def _on_diagnostic(self, message: Mapping[str, Any]) -> bool:
        diagnostic = message.get("diagnostic") or {}
        if diagnostic.get("severity") != "error":
            return False
        self.errors.append(str(diagnostic.get("summary", "")))
        self.phase = "failed"
        return True

    _HANDLERS: ClassVar[dict[str, Callable[[ApplyProgress, Mapping[str, Any]], bool]]] = {
        "version": _on_version,
        "refresh_start": _on_refresh,
        "refresh_complete": _on_refresh,
        "planned_change": _on_planned_change,
        "change_summary": _on_change_summary,
        "apply_start": _on_apply,
        "apply_complete": _on_apply,
        "apply_errored": _on_apply,
        "diagnostic": _on_diagnostic,
    }

    def describe(self) -> str:
        """One line: ``12/57 resource changes done`` (+ failures), or the phase before the plan."""
        if self.total is None:
            if self.phase == "refreshing":
                return f"refreshing state ({self.refreshed} resources read)"
            return f"{self.phase}..."
        text = f"{self.done}/{self.total} resource changes done"
        if self.failed:
            text += f", {self.failed} failed"
        return text
