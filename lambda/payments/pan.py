"""Primary account number (card number) detection.

A PAN is 13-19 digits passing the Luhn check, written in any Unicode digit form and split by
any separators. Text is first NFKC-normalised (fullwidth digits become ASCII ones) and every
remaining decimal digit (Arabic-Indic, Devanagari, ...) is read as its value; then digit groups
joined by a short run (1-3 characters) of anything that is not a letter or digit count as one
number: ``4111.1111.1111.1111``, ``4111 - 1111 - 1111 - 1111``, non-breaking spaces, slashes,
newlines. Detection looks at every string, every object key and every number literal, at any
depth; the log masking uses the same detector. Nothing here ever returns the number itself:
callers only learn *where* it was.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from decimal import Decimal

MIN_LEN = 13
MAX_LEN = 19
SEPARATOR_MAX = 3

# Runs of digit groups joined by a short run of non-alphanumeric characters (``_`` included).
_GROUPED_RUN = re.compile(rf"(?<![0-9])[0-9]+(?:[\W_]{{1,{SEPARATOR_MAX}}}[0-9]+)*(?![0-9])")
_DIGITS = re.compile(r"[0-9]+")
_NOT_DIGIT = re.compile(r"[^0-9]")


def normalise(text: str) -> tuple[str, list[int] | None]:
    """(text with every digit as ASCII, index map back to ``text``; None when unchanged)."""
    if text.isascii():
        return text, None
    out: list[str] = []
    origin: list[int] = []
    for position, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char) if not char.isascii() else char:
            ascii_digit = not piece.isascii() and piece.isdecimal()
            out.append(str(unicodedata.decimal(piece)) if ascii_digit else piece)
            origin.append(position)
    return "".join(out), origin


def luhn_valid(digits: str) -> bool:
    total = 0
    parity = len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _candidate_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) character spans in ``text`` holding a Luhn-valid 13-19 digit number."""
    normal, origin = normalise(text)
    for match in _GROUPED_RUN.finditer(normal):
        run = match.group(0)
        if sum(c.isdigit() for c in run) < MIN_LEN:
            continue
        groups = [(m.start(), m.end()) for m in _DIGITS.finditer(run)]
        # A PAN may be any consecutive sequence of groups inside the run ("order 12 4111 1111
        # 1111 1111 9"), so try each window whose digit count is in range.
        for i in range(len(groups)):
            count = 0
            for j in range(i, len(groups)):
                count += groups[j][1] - groups[j][0]
                if count > MAX_LEN:
                    break
                if count >= MIN_LEN:
                    digits = _NOT_DIGIT.sub("", run[groups[i][0] : groups[j][1]])
                    if luhn_valid(digits):
                        start, end = match.start() + groups[i][0], match.start() + groups[j][1]
                        if origin is None:
                            yield start, end
                        else:
                            yield origin[start], origin[end - 1] + 1


def contains_pan(text: str) -> bool:
    return next(_candidate_spans(text), None) is not None


def mask_pans(text: str, replacement: str = "[REDACTED-PAN]") -> str:
    """``text`` with every PAN-looking digit run replaced."""
    if not any(ch.isdigit() or not ch.isascii() for ch in text):
        return text
    spans = list(_candidate_spans(text))
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def find_pan(document: object) -> str | None:
    """Dotted path of the first field holding a PAN (``""`` for the document root), else None.

    A PAN found in an object *key* reports the path of the object holding the key. Walks
    iteratively: the depth of a decoded JSON document is bounded only by the body size.
    """
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                key_text = str(key)
                if contains_pan(key_text):
                    return path
                stack.append((f"{path}.{key_text}" if path else key_text, value))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                stack.append((f"{path}[{index}]", value))
        elif isinstance(node, str):
            if contains_pan(node):
                return path
        elif isinstance(node, (int, Decimal)) and not isinstance(node, bool) and contains_pan(str(node)):
            return path
    return None
