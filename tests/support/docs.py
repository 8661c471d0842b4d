"""The commands the README and the runbooks print, read from their Markdown so the docs cannot drift
from what the tests run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/runbooks.md")
# Fenced blocks a reader pastes into a shell.
SHELL_FENCES = ("bash", "sh", "shell", "console")
_FENCE = re.compile(r"^```(?P<lang>[A-Za-z]*)\n(?P<body>.*?)^```", re.M | re.S)
# The tools whose commands the docs promise work as printed.
TOOLS = re.compile(r"^(?:\.venv/bin/)?(?P<tool>ops|devkit|make)(?:\s|$)")


def shell_blocks(name: str) -> list[str]:
    """The bodies of the shell code blocks of ``name`` (a path under the repository root)."""
    text = (ROOT / name).read_text(encoding="utf-8")
    return [m.group("body") for m in _FENCE.finditer(text) if m.group("lang") in SHELL_FENCES]


def logical_lines(block: str) -> list[str]:
    """The block's commands: backslash continuations joined, blank lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in block.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    return lines


def strip_comment(line: str) -> str:
    """The command without its trailing ``# comment`` (a ``#`` after whitespace, outside quotes)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def tool_commands(name: str, tool: str) -> list[str]:
    """Every command of ``tool`` (ops, devkit, make) in the shell blocks of ``name``, comments dropped."""
    found = []
    for block in shell_blocks(name):
        for line in logical_lines(block):
            command = strip_comment(line)
            match = TOOLS.match(command)
            if match and match.group("tool") == tool:
                found.append(command)
    return found
