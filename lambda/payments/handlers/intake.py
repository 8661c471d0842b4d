"""POST /transactions (create) and POST /validate (dry run: validate only, store nothing)."""

from __future__ import annotations

from typing import Any

from payments import idempotency, money, principals
from payments.handlers._api import guarded, respond
from payments.handlers._runtime import count, entrypoint, logger, services
from payments.intake import create_transaction
from payments.responses import HttpRequest, parse_event
from payments.validation import parse_and_validate


def _create(request: HttpRequest, principal: principals.Principal | None) -> dict[str, Any]:
    principals.require_principal(principal, services().settings.require_principal)
    request.require_json()
    raw = request.body_bytes()
    key = idempotency.require_key(request.headers)
    payment = parse_and_validate(raw)
    principals.require_merchant(principal, payment.merchant_id)
    scope = principals.idempotency_scope(principal, request.api_key_id)
    result = create_transaction(services(), payment, key, scope)
    transaction_id = result.body.get("transaction_id")
    logger.append_keys(transaction_id=transaction_id)
    # A replay is the original answer: the same 202, Location included (docs/openapi.json requires it).
    location = {"Location": f"/transactions/{transaction_id}"}
    if result.replayed:
        logger.info("idempotent replay", extra={"status": result.status_code})
        count("IdempotentReplay")
        return respond(request, result.status_code, result.body, {**location, "Idempotent-Replayed": "true"})
    logger.info(
        "transaction accepted",
        extra={
            "currency": payment.currency,
            "amount_minor": payment.amount_minor,
            "merchant_id": payment.merchant_id,
        },
    )
    count("TransactionCreated")
    return respond(request, result.status_code, result.body, location)


def _dry_run(request: HttpRequest, principal: principals.Principal | None) -> dict[str, Any]:
    principals.require_principal(principal, services().settings.require_principal)
    request.require_json()
    payment = parse_and_validate(request.body_bytes())
    principals.require_merchant(principal, payment.merchant_id)
    count("ValidationDryRun")
    return respond(
        request,
        200,
        {
            "valid": True,
            "amount_minor": payment.amount_minor,
            "amount": money.format_minor(payment.amount_minor, payment.currency),
            "currency": payment.currency,
        },
    )


@entrypoint("intake")
def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event, getattr(context, "aws_request_id", None))
    logger.set_correlation_id(request.request_id)
    principal = principals.from_event(event)
    if request.resource == "/validate" or request.path.endswith("/validate"):
        return guarded(request, lambda: _dry_run(request, principal))
    return guarded(request, lambda: _create(request, principal))
