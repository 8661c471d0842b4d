"""GET /transactions/{id} and GET /status/{id}: the public view of one transaction."""

from __future__ import annotations

from typing import Any

from payments import ids, principals
from payments.errors import InvalidRequest, NotFound
from payments.handlers._api import guarded, respond
from payments.handlers._runtime import count, entrypoint, logger, services
from payments.notify import summary
from payments.responses import HttpRequest, parse_event


def _lookup(request: HttpRequest, principal: principals.Principal | None) -> dict[str, Any]:
    principals.require_principal(principal, services().settings.require_principal)
    transaction_id = request.path_parameters.get("id") or request.path_parameters.get("transaction_id") or ""
    if not ids.is_transaction_id(transaction_id):
        raise InvalidRequest("parameter_invalid", "id must be a transaction id (txn_...).", "id")
    logger.append_keys(transaction_id=transaction_id)
    item = services().repo.get(transaction_id)
    owner = item.get("api_key_id") if item else None
    # Another API key's transaction is reported as missing: existence is not disclosed. With an
    # authenticated client, the merchant scope decides instead (a partner reads its merchants').
    if principal is not None:
        hidden = item is not None and not principals.visible(principal, item.get("merchant_id"))
    else:
        hidden = bool(owner and request.api_key_id and owner != request.api_key_id)
    if item is None or hidden:
        raise NotFound("resource_missing", "No such transaction.", "id")
    count("StatusRead")
    return respond(request, 200, summary(item))


@entrypoint("status")
def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event, getattr(context, "aws_request_id", None))
    logger.set_correlation_id(request.request_id)
    principal = principals.from_event(event)
    return guarded(request, lambda: _lookup(request, principal))
