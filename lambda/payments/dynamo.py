"""DynamoDB attribute-value encoding for the types this application stores.

A few lines instead of ``boto3.dynamodb.types``: importing boto3 pulls in s3transfer and
the resource layer, which costs every cold start while the code only needs botocore.
Numbers are exact: int and Decimal in, int (whole numbers) or Decimal out — never float.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any


def serialize(value: Any) -> dict[str, Any]:  # noqa: PLR0911 - one branch per DynamoDB type
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, Decimal)):
        if isinstance(value, Decimal) and not value.is_finite():
            raise TypeError("DynamoDB numbers must be finite")
        return {"N": str(value)}
    if isinstance(value, float):
        raise TypeError("floats are not stored: use int minor units or Decimal")
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, (set, frozenset)) and all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _number(text: str) -> int | Decimal:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else number


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "S": lambda v: v,
    "N": _number,
    "BOOL": bool,
    "NULL": lambda _v: None,
    "M": lambda v: {k: deserialize(x) for k, x in v.items()},
    "L": lambda v: [deserialize(x) for x in v],
    "SS": set,
    "NS": lambda v: {_number(x) for x in v},
    "B": bytes,
    "BS": lambda v: {bytes(x) for x in v},
}


def deserialize(attribute: Mapping[str, Any]) -> Any:
    (kind, value), *_ = attribute.items()
    try:
        decoder = _DECODERS[kind]
    except KeyError:
        raise TypeError(f"unknown DynamoDB attribute type {kind}") from None
    return decoder(value)


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item for PutItem; None-valued attributes are left out."""
    return {k: serialize(v) for k, v in item.items() if v is not None}


def from_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: deserialize(v) for k, v in attributes.items()}


def value_of(item: Mapping[str, Any], name: str, kind: str, default: Any = None) -> Any:
    """One attribute of an item in attribute-value form, as DynamoDB sent it: the value of
    ``item[name]`` if it has the type ``kind`` (``"S"``, ``"N"`` as its text, ``"M"``...), else
    ``default`` (the attribute is missing or of another type). For code that reads a raw item
    (a Scan page, an archive line) without decoding all of it."""
    attribute = item.get(name)
    if isinstance(attribute, Mapping) and kind in attribute:
        return attribute[kind]
    return default


def scalar(item: Mapping[str, Any], name: str) -> str | None:
    """A string or number attribute of a raw item as text (a number as DynamoDB sent it); None
    when it is missing or of another type."""
    for kind in ("S", "N"):
        found = value_of(item, name, kind)
        if found is not None:
            return str(found)
    return None
