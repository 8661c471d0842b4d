"""One module per shared rule: ``payments`` and ``ops`` spell each rule below in one module only, so
a second copy (the way the rules drifted apart before) fails here instead of in production.

Each test walks the syntax trees of ``lambda/payments`` and ``ops`` and names the offending lines.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAYMENTS = REPO / "lambda" / "payments"
SOURCES = (PAYMENTS, REPO / "ops")


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _modules(*allowed: Path) -> Iterator[tuple[Path, ast.Module]]:
    """Every module of payments and ops except the rule's own (``allowed``)."""
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            if path not in allowed:
                yield path, _tree(path)


def _offenders(allowed: tuple[Path, ...], found: Callable[[ast.AST], str | None]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}: {what}"
        for path, tree in _modules(*allowed)
        for node in ast.walk(tree)
        if (what := found(node)) is not None
    ]


def _text(node: ast.AST) -> str | None:
    """A string literal (a plain one, or a literal part of an f-string)."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# -- resource names: payments/names.py ------------------------------------------------------------

NAME_STARTS = ("payment-", "/payment-", "failed-transactions-")
NOT_RESOURCES = {"payment-ops"}  # the CLI's user agent, not a resource


def _resource_name(node: ast.AST) -> str | None:
    text = _text(node)
    if text is None or text in NOT_RESOURCES or not text.startswith(NAME_STARTS):
        return None
    return repr(text)


def test_resource_names_are_spelled_in_payments_names_only() -> None:
    """Tables, queues, alarms, the API, parameters: derived from the suffix by payments.names."""
    offenders = _offenders((PAYMENTS / "names.py",), _resource_name)
    assert offenders == [], "resource names spelled outside payments/names.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        'TABLE = f"payment-clients-{suffix}"',
        'prefix = "payment-"',
        'param = f"/payment-{suffix}/processor/endpoint"',
        'queue = "failed-transactions-dlq-" + suffix',
    ],
)
def test_the_name_check_sees_a_hand_spelled_name(source: str) -> None:
    assert [_resource_name(n) for n in ast.walk(ast.parse(source)) if _resource_name(n)]


# -- DynamoDB attribute values: payments/dynamo.py ---------------------------------------------------

TYPE_TAGS = {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"}


def _tag_read(node: ast.AST) -> str | None:
    """``x["S"]`` or ``x.get("N", ...)``: a value read by its DynamoDB type tag."""
    if isinstance(node, ast.Subscript) and _text(node.slice) in TYPE_TAGS:
        return ast.unparse(node)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and _text(node.args[0]) in TYPE_TAGS
    ):
        return ast.unparse(node)
    return None


def test_attribute_values_are_read_in_payments_dynamo_only() -> None:
    """Decoding (``deserialize``) and reading one attribute of a raw item (``value_of``,
    ``scalar``) live in payments.dynamo: no module reads a value by its type tag itself."""
    offenders = _offenders((PAYMENTS / "dynamo.py",), _tag_read)
    assert offenders == [], "attribute values read outside payments/dynamo.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    ['int(item["timestamp"]["N"])', 'item.get("status", {}).get("S", "?")', 'value.get("M")'],
)
def test_the_attribute_check_sees_a_read_by_type_tag(source: str) -> None:
    assert [n for n in ast.walk(ast.parse(source)) if _tag_read(n)]


# -- row keys: payments/store/keys.py ---------------------------------------------------------------


def _row_key_by_hand(node: ast.AST) -> str | None:
    """``"|".join(...)`` or ``f"{a}|{b}"``: a row's one-string key built outside keys.py."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and _text(node.func.value) == "|"
    ):
        return ast.unparse(node)
    if isinstance(node, ast.JoinedStr) and any(
        _text(part) == "|"
        and isinstance(before, ast.FormattedValue)
        and isinstance(after, ast.FormattedValue)
        for before, part, after in zip(node.values, node.values[1:], node.values[2:], strict=False)
    ):
        return ast.unparse(node)
    return None


def test_row_keys_are_built_in_payments_store_keys_only() -> None:
    """``transaction_id|timestamp`` (archives, manifests, ops trace, ops restore) is row_id/key_id."""
    offenders = _offenders((PAYMENTS / "store" / "keys.py",), _row_key_by_hand)
    assert offenders == [], "row keys built outside payments/store/keys.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source", ['"|".join(str(v) for v in key)', "f\"{item['transaction_id']}|{item['timestamp']}\""]
)
def test_the_row_key_check_sees_a_key_built_by_hand(source: str) -> None:
    assert [n for n in ast.walk(ast.parse(source)) if _row_key_by_hand(n)]


# -- time: payments/clock.py -------------------------------------------------------------------------


def _time_by_hand(node: ast.AST) -> str | None:
    """A datetime parsed, formatted or turned into epoch time outside payments.clock: ISO parsing
    of a datetime (a date's ``date.fromisoformat`` is fine), ``isoformat(timespec=...)`` (it writes
    ``+00:00``), a ``+00:00`` literal, or ``.timestamp()``."""
    if _text(node) == "+00:00":
        return repr("+00:00")
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    called, receiver = node.func.attr, ast.unparse(node.func.value)
    if called == "fromisoformat" and receiver.split(".")[-1] == "datetime":
        return ast.unparse(node)
    if called == "isoformat" and (node.args or node.keywords):
        return ast.unparse(node)
    if called == "timestamp" and not node.args:
        return ast.unparse(node)
    return None


def test_times_are_parsed_formatted_and_converted_in_payments_clock_only() -> None:
    """One UTC format (``iso_from_ms``/``iso_from_datetime``), one ISO reader (``ms_from_iso``/
    ``datetime_from_iso``), one datetime-to-milliseconds (``ms_from_datetime``)."""
    offenders = _offenders((PAYMENTS / "clock.py",), _time_by_hand)
    assert offenders == [], "time handled outside payments/clock.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        "dt.datetime.fromisoformat(text)",
        'created.isoformat(timespec="seconds")',
        'value.replace("Z", "+00:00")',
        "int(cutoff.timestamp() * 1000)",
    ],
)
def test_the_time_check_sees_a_second_formatter_or_parser(source: str) -> None:
    assert [n for n in ast.walk(ast.parse(source)) if _time_by_hand(n)]


def test_the_time_check_leaves_dates_alone() -> None:
    source = "dt.date.fromisoformat(value); day.isoformat(); f'{created:%Y/%m/%d}'"
    assert not [n for n in ast.walk(ast.parse(source)) if _time_by_hand(n)]


# -- the archive bucket's layout: payments/layout.py ------------------------------------------------

LAYOUT_STARTS = ("cleanup/", "reports/", "transactions/")
LAYOUT_ENDS = (".jsonl", ".manifest.json", "/summary.json")


def _layout_by_hand(node: ast.AST) -> str | None:
    text = _text(node)
    if text is None or not (
        text.startswith(LAYOUT_STARTS) or text.endswith(LAYOUT_ENDS) or text == "summary.json"
    ):
        return None
    return repr(text)


def test_the_archive_layout_is_spelled_in_payments_layout_only() -> None:
    """Prefixes, object and manifest suffixes and the run summary's name: payments.layout, which
    ops imports for them instead of the cleanup's archive module."""
    offenders = _offenders((PAYMENTS / "layout.py",), _layout_by_hand)
    assert offenders == [], "archive layout spelled outside payments/layout.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source", ['SUMMARY = "summary.json"', 'f"cleanup/{day}/"', 'key.endswith(".manifest.json")']
)
def test_the_layout_check_sees_a_name_spelled_by_hand(source: str) -> None:
    assert [n for n in ast.walk(ast.parse(source)) if _layout_by_hand(n)]
