"""Request validation: JSON decoding, the shared JSON schema, then domain rules.

Order matters: the body is searched for card numbers before anything else looks at it,
so no later error path can carry one; the schema (the same file API Gateway uses) checks
shapes; the domain converts money exactly and checks what JSON Schema cannot express.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from hashlib import sha256
from typing import Any

import fastjsonschema

from payments import money, pan
from payments.errors import InvalidRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
METADATA_KEY_MAX = 40

REQUIRED_FIELDS = ("merchant_id", "customer_id", "amount", "currency", "payment_method")

# Messages per schema rule; values are never echoed (they may be secrets).
_RULE_MESSAGES = {
    "type": "has the wrong type",
    "pattern": "has an invalid format",
    "minLength": "is too short",
    "maxLength": "is too long",
    "enum": "is not one of the allowed values",
    "maxProperties": "has too many entries",
    "minProperties": "has too few entries",
}


@dataclass(frozen=True)
class PaymentRequest:
    """A validated create request, money already in integer minor units."""

    merchant_id: str
    customer_id: str
    amount_minor: int
    currency: str
    payment_method_type: str
    payment_method_token: str
    description: str | None = None
    reference: str | None = None
    country: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    request_hash: str = ""


SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", "create_transaction.json")


def schema_document() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        document: dict[str, Any] = json.load(fh)
    return document


@lru_cache(maxsize=1)
def _compiled_schema() -> Callable[[Any], Any]:
    # Compiled once per container: fastjsonschema generates Python code for the schema.
    return fastjsonschema.compile(schema_document())


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers can disagree on which duplicate wins; refuse the ambiguity.
            raise InvalidRequest(
                "duplicate_parameter",
                "The request body contains a duplicated parameter.",
                key if len(key) <= 64 and not pan.contains_pan(key) else None,
            )
        result[key] = value
    return result


def _no_constants(_name: str) -> Decimal:
    # NaN / Infinity are not JSON, but Python's parser accepts them: keep them as Decimal so
    # the field they appear in gets a precise error instead of a generic parse failure.
    return Decimal(_name)


def decode_body(raw: bytes) -> Any:
    """Bytes → JSON document with exact numbers (Decimal); InvalidRequest on anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if pan.contains_pan(raw.decode("latin-1")):
            raise _pan_error(None) from None
        raise InvalidRequest("invalid_json", "The request body must be UTF-8 encoded JSON.") from None
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_reject_duplicate_keys,
        )
    except InvalidRequest:
        raise
    except (ValueError, RecursionError):
        if pan.contains_pan(text):
            raise _pan_error(None) from None
        raise InvalidRequest("invalid_json", "The request body is not valid JSON.") from None


def _pan_error(param: str | None) -> InvalidRequest:
    return InvalidRequest(
        "card_data_not_allowed",
        "Raw card numbers are not accepted. Tokenize the card with the processor "
        "and send payment_method.token.",
        param or None,
    )


def _schema_param(exc: fastjsonschema.JsonSchemaValueException, document: Any) -> tuple[str | None, str]:
    """The field a schema error is about (dotted path, no ``data.`` prefix) and a message."""
    name = exc.name or "data"
    path = name[len("data") :].lstrip(".") if name.startswith("data") else name
    node: Any = document
    for part in [p for p in path.split(".") if p]:
        node = node.get(part) if isinstance(node, dict) else None
    rule = exc.rule or ""
    if rule == "required" and isinstance(node, dict):
        required = exc.rule_definition if isinstance(exc.rule_definition, list) else REQUIRED_FIELDS
        missing = next((str(f) for f in required if f not in node), None)
        if missing is not None:
            full = f"{path}.{missing}" if path else missing
            return full, f"{full} is required."
    if rule == "additionalProperties" and isinstance(node, dict):
        definition = exc.definition or {}
        known = set((definition.get("properties") or {}).keys())
        extra = next((str(k) for k in node if k not in known), None)
        if extra is not None:
            shown = extra if len(extra) <= 64 else extra[:64]
            full = f"{path}.{shown}" if path else shown
            return full, f"Received unknown parameter: {full}."
    if not path:
        return None, "The request body must be a JSON object."
    return path, f"{path} {_RULE_MESSAGES.get(rule, 'is invalid')}."


def _check_strings(document: Any) -> None:
    """Every string must be valid Unicode text DynamoDB can store (no lone surrogates)."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                if not _encodable(str(key)):
                    raise InvalidRequest(
                        "invalid_string", "A parameter name is not valid Unicode.", path or None
                    )
                stack.append((child, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
        elif isinstance(node, str) and not _encodable(node):
            raise InvalidRequest("invalid_string", f"{path} is not valid Unicode text.", path or None)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def request_hash(payment: PaymentRequest) -> str:
    """Hash of the *normalised* payment: what counts as "the same request" for idempotency.

    Two bodies are the same request when they describe the same payment: amount in minor units
    (``100.5``, ``"100.50"`` and ``1.005e2`` are all 10050 USD cents), currency code in upper case,
    and the same merchant, customer, payment method, country, description, reference and metadata.
    Key order, whitespace, number spelling and currency case do not matter; any field the payment
    depends on does.
    """
    canonical = {
        "merchant_id": payment.merchant_id,
        "customer_id": payment.customer_id,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "payment_method": {"type": payment.payment_method_type, "token": payment.payment_method_token},
        "description": payment.description,
        "reference": payment.reference,
        "country": payment.country,
        "metadata": dict(sorted(payment.metadata.items())),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256(text.encode("ascii")).hexdigest()


def validate_document(document: Any) -> PaymentRequest:
    """Validate a decoded body; InvalidRequest names the offending field in ``param``."""
    path = pan.find_pan(document)
    if path is not None:
        raise _pan_error(path)
    _check_strings(document)
    try:
        _compiled_schema()(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        param, message = _schema_param(exc, document)
        raise InvalidRequest("parameter_invalid" if param else "invalid_request", message, param) from None
    metadata = document.get("metadata") or {}
    for key in metadata:
        if not key or len(key) > METADATA_KEY_MAX:
            raise InvalidRequest(
                "parameter_invalid",
                f"metadata keys must be 1-{METADATA_KEY_MAX} characters.",
                "metadata",
            )
    currency = money.normalize_currency(document["currency"])
    amount_minor = money.to_minor_units(document["amount"], currency)
    method = document["payment_method"]
    payment = PaymentRequest(
        merchant_id=document["merchant_id"],
        customer_id=document["customer_id"],
        amount_minor=amount_minor,
        currency=currency,
        payment_method_type=method["type"],
        payment_method_token=method["token"],
        description=document.get("description"),
        reference=document.get("reference"),
        country=document.get("country"),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )
    return replace(payment, request_hash=request_hash(payment))


def parse_and_validate(raw: bytes) -> PaymentRequest:
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge("payload_too_large", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
    return validate_document(decode_body(raw))


def revalidate_stored(item: dict[str, Any]) -> list[str]:
    """Reasons a stored transaction can no longer be processed (empty list = valid).

    The intake validated the request; the workflow's Validate step re-checks the stored
    record so a tampered or legacy item cannot reach settlement.
    """
    reasons: list[str] = []
    currency = item.get("currency")
    if not isinstance(currency, str) or currency not in money.CURRENCY_EXPONENTS:
        reasons.append("unsupported_currency")
    amount = item.get("amount_minor")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= money.MAX_AMOUNT_MINOR:
        reasons.append("invalid_amount")
    token = item.get("payment_method_token")
    if not isinstance(token, str) or not token.startswith("tok_"):
        reasons.append("invalid_payment_method")
    for name in ("merchant_id", "customer_id"):
        if not item.get(name):
            reasons.append(f"missing_{name}")
    for value in (item.get("description"), item.get("reference"), *(item.get("metadata") or {}).values()):
        if isinstance(value, str) and pan.contains_pan(value):
            reasons.append("card_data_present")
            break
    return reasons
