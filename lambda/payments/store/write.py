"""The write rule: the only code that writes DynamoDB (``tests/unit/test_store.py`` enforces it).

Every write states its condition (``condition=``, ``None`` saying in the open that it has none)
and whether it is conditioned on the ``version`` its caller read (``read_version=``: a number,
or ``ANY_VERSION``). Every update increments ``version`` (``if_not_exists(version, 0) + 1``):
a row that any writer changed after a reader took it has another version, so a write conditioned
on the version read — the cleanup's guarded delete, a transition — refuses it. Puts create rows
(``attribute_not_exists``); deletes are conditioned like updates.

Updates answer with ``Written``: whether the condition held, and the item as it is now (after
the write) or as it was (when refused: ``ReturnValuesOnConditionCheckFailure=ALL_OLD``), in
DynamoDB's attribute-value form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from payments.dynamo import value_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

VERSION = "version"


class _AnyVersion:
    def __repr__(self) -> str:
        return "ANY_VERSION"


ANY_VERSION: Final = _AnyVersion()
"""``read_version=ANY_VERSION``: the write is deliberately not conditioned on the version read."""

ReadVersion = int | None | _AnyVersion
"""The version a write is conditioned on: a number (0 or None: the row has none yet) or ANY_VERSION."""

_NAMES = {"#v": VERSION}
_RESERVED = frozenset({"#v", ":v", ":vsnzero", ":vsnone"})  # the rule's own placeholders


@dataclass(frozen=True)
class Written:
    """What an update did: ``ok`` when its condition held; ``item``: the row after it (ok) or
    before it (refused; empty when the row does not exist)."""

    ok: bool
    item: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok


def _check_placeholders(names: Mapping[str, str] | None, values: Mapping[str, Any] | None) -> None:
    clash = _RESERVED & {*(names or {}), *(values or {})}
    if clash:
        raise ValueError(f"placeholders {sorted(clash)} are the write rule's own")


def _version_condition(read_version: ReadVersion, values: dict[str, Any]) -> str | None:
    if isinstance(read_version, _AnyVersion):
        return None
    if read_version:
        values[":v"] = {"N": str(int(read_version))}
        return "#v = :v"
    return "attribute_not_exists(#v)"


def _conditions(*parts: str | None) -> str | None:
    present = [f"({p})" if " OR " in p else p for p in parts if p]
    return " AND ".join(present) if present else None


def update_request(
    table: str,
    key: Mapping[str, Any],
    *,
    sets: Sequence[str] = (),
    clauses: str = "",
    condition: str | None,
    read_version: ReadVersion,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The UpdateItem parameters of one versioned write: ``sets`` (``#a = :a`` assignments) plus
    the version increment, then ``clauses`` (``REMOVE``/``ADD``/``DELETE``), under ``condition``
    and the version check."""
    _check_placeholders(names, values)
    all_values: dict[str, Any] = {**(values or {}), ":vsnzero": {"N": "0"}, ":vsnone": {"N": "1"}}
    expression = "SET " + ", ".join([*sets, "#v = if_not_exists(#v, :vsnzero) + :vsnone"])
    if clauses:
        expression += f" {clauses}"
    request: dict[str, Any] = {
        "TableName": table,
        "Key": dict(key),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {**(names or {}), **_NAMES},
        "ExpressionAttributeValues": all_values,
    }
    full = _conditions(condition, _version_condition(read_version, all_values))
    if full:
        request["ConditionExpression"] = full
    return request


def update(ddb: Any, table: str, key: Mapping[str, Any], **parts: Any) -> Written:
    """One versioned UpdateItem (see ``update_request`` for ``parts``)."""
    request = update_request(table, key, **parts)
    try:
        response = ddb.update_item(
            **request, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD"
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            found: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            return Written(False, dict(found))
        raise
    return Written(True, dict(response.get("Attributes") or {}))


def transact_update(table: str, key: Mapping[str, Any], **parts: Any) -> TransactWriteItemTypeDef:
    """The TransactWriteItems operation of one versioned update."""
    return {"Update": update_request(table, key, **parts)}  # type: ignore[typeddict-item]


def transact_put(
    table: str, item: Mapping[str, Any], *, condition: str, **extra: Any
) -> TransactWriteItemTypeDef:
    """The TransactWriteItems operation that creates a row (``condition``: that it is new)."""
    put = {"TableName": table, "Item": dict(item), "ConditionExpression": condition, **extra}
    return {"Put": put}  # type: ignore[typeddict-item]


def delete_request(
    table: str,
    key: Mapping[str, Any],
    *,
    condition: str | None,
    read_version: ReadVersion,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The DeleteItem parameters of a delete under ``condition`` and the version read."""
    _check_placeholders(names, values)
    all_values = dict(values or {})
    version_check = _version_condition(read_version, all_values)
    all_names = {**(names or {}), **(_NAMES if version_check else {})}
    request: dict[str, Any] = {"TableName": table, "Key": dict(key)}
    full = _conditions(condition, version_check)
    if full:
        request["ConditionExpression"] = full
    if all_names:
        request["ExpressionAttributeNames"] = all_names
    if all_values:
        request["ExpressionAttributeValues"] = all_values
    return request


def transact_delete(table: str, key: Mapping[str, Any], **parts: Any) -> TransactWriteItemTypeDef:
    """The TransactWriteItems operation of a delete (``delete_request``); a refused one answers
    with the row as it is (``ALL_OLD``)."""
    request = {**delete_request(table, key, **parts), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    return {"Delete": request}  # type: ignore[typeddict-item]


def transact_condition_check(
    table: str,
    key: Mapping[str, Any],
    *,
    condition: str,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> TransactWriteItemTypeDef:
    """A TransactWriteItems ``ConditionCheck``: the group lands only while ``condition`` holds on
    ``key`` (writes nothing; costs one write unit per group)."""
    _check_placeholders(names, values)
    check: dict[str, Any] = {"TableName": table, "Key": dict(key), "ConditionExpression": condition}
    if names:
        check["ExpressionAttributeNames"] = dict(names)
    if values:
        check["ExpressionAttributeValues"] = dict(values)
    return {"ConditionCheck": check}  # type: ignore[typeddict-item]


def transact(ddb: Any, operations: Sequence[TransactWriteItemTypeDef]) -> None:
    """TransactWriteItems: every operation lands or none does (errors are the caller's to read)."""
    ddb.transact_write_items(TransactItems=list(operations))


def delete(ddb: Any, table: str, key: Mapping[str, Any], **parts: Any) -> bool:
    """One DeleteItem (``delete_request``); False when refused."""
    try:
        ddb.delete_item(**delete_request(table, key, **parts))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def put(
    ddb: Any,
    table: str,
    item: Mapping[str, Any],
    *,
    condition: str | None,
    read_version: ReadVersion,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """One PutItem that creates a row, or replaces the whole row read at ``read_version``; False
    when refused. A replacement carries the next version itself (``read_version + 1``): a put
    that would keep or lower it is a programming error, not a write."""
    _check_placeholders(names, values)
    all_values = dict(values or {})
    version_check = _version_condition(read_version, all_values)
    if isinstance(read_version, int) and read_version:
        written = value_of(item, VERSION, "N")
        if written != str(read_version + 1):
            raise ValueError(
                f"a row read at version {read_version} must be written at {read_version + 1}, not {written}"
            )
    request: dict[str, Any] = {"TableName": table, "Item": dict(item)}
    full = _conditions(condition, version_check)
    if full:
        request["ConditionExpression"] = full
    all_names = {**(names or {}), **(_NAMES if version_check else {})}
    if all_names:
        request["ExpressionAttributeNames"] = all_names
    if all_values:
        request["ExpressionAttributeValues"] = all_values
    try:
        ddb.put_item(**request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
