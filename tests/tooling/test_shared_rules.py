"""One module per shared rule: ``payments`` and ``ops`` spell each rule below in one module only, so
a second copy (the way the rules drifted apart before) fails here instead of in production.

Each rule is a finder over the syntax trees of ``lambda/payments`` and ``ops``: the test names the
offending lines, and each finder is shown a planted second copy so that it cannot go blind.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


# -- the rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    what: str
    home: Path  # the one module that spells it
    found: Callable[[ast.AST], str | None]
    planted: tuple[str, ...]  # second copies the finder must see


RULES = [
    Rule(
        "resource names (tables, queues, alarms, the API, parameters)",
        PAYMENTS / "names.py",
        _resource_name,
        (
            'TABLE = f"payment-clients-{suffix}"',
            'prefix = "payment-"',
            'param = f"/payment-{suffix}/processor/endpoint"',
            'queue = "failed-transactions-dlq-" + suffix',
        ),
    ),
    Rule(
        "DynamoDB attribute values (deserialize, value_of, scalar)",
        PAYMENTS / "dynamo.py",
        _tag_read,
        ('int(item["timestamp"]["N"])', 'item.get("status", {}).get("S", "?")', 'value.get("M")'),
    ),
    Rule(
        "row keys, transaction_id|timestamp (row_id, key_id)",
        PAYMENTS / "store" / "keys.py",
        _row_key_by_hand,
        ('"|".join(str(v) for v in key)', "f\"{item['transaction_id']}|{item['timestamp']}\""),
    ),
    Rule(
        "time: one UTC format, one ISO reader, one datetime-to-milliseconds",
        PAYMENTS / "clock.py",
        _time_by_hand,
        (
            "dt.datetime.fromisoformat(text)",
            'created.isoformat(timespec="seconds")',
            'value.replace("Z", "+00:00")',
            "int(cutoff.timestamp() * 1000)",
        ),
    ),
    Rule(
        "the archive bucket's layout (prefixes, object, manifest and summary names)",
        PAYMENTS / "layout.py",
        _layout_by_hand,
        ('SUMMARY = "summary.json"', 'f"cleanup/{day}/"', 'key.endswith(".manifest.json")'),
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=[r.home.stem for r in RULES])
def test_each_rule_is_spelled_in_its_own_module_only(rule: Rule) -> None:
    offenders = _offenders((rule.home,), rule.found)
    where = rule.home.relative_to(REPO)
    assert offenders == [], f"{rule.what} outside {where}:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("rule", "source"),
    [(r, source) for r in RULES for source in r.planted],
    ids=[f"{r.home.stem}-{n}" for r in RULES for n in range(len(r.planted))],
)
def test_each_finder_sees_a_planted_second_copy(rule: Rule, source: str) -> None:
    assert [node for node in ast.walk(ast.parse(source)) if rule.found(node)]


def test_the_time_check_leaves_dates_alone() -> None:
    source = "dt.date.fromisoformat(value); day.isoformat(); f'{created:%Y/%m/%d}'"
    assert not [n for n in ast.walk(ast.parse(source)) if _time_by_hand(n)]


def test_the_name_check_leaves_the_user_agent_alone() -> None:
    assert not [n for n in ast.walk(ast.parse('agent = "payment-ops"')) if _resource_name(n)]
