"""Lambda REQUEST authorizer of the API: ``Authorization: Bearer <key id>.<secret>`` -> principal.

Reads one item of the clients table (``CLIENTS_TABLE``) per request API Gateway has not cached.
Logs the key id and the outcome, never the header or the secret.
"""

from __future__ import annotations

from typing import Any

from payments import clients
from payments.authorizer import ClientsTable, Unauthorized, authorize
from payments.config import get_settings
from payments.handlers._runtime import count, entrypoint, logger

_table: ClientsTable | None = None


def _clients() -> ClientsTable:
    global _table  # noqa: PLW0603 - one per container
    if _table is None:
        _table = ClientsTable(clients.dynamodb(), get_settings().clients_table)
    return _table


@entrypoint("authorizer")
def handler(event: Any, context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    try:
        decision, response = authorize(event, _clients().client_by_key_id)
    except Unauthorized:
        logger.info("authorization refused", extra={"reason": "missing_or_malformed"})
        count("AuthMissing")
        raise
    if decision.allowed:
        logger.info("authorized", extra={"client_id": decision.principal_id})
        count("AuthAllowed")
    else:
        logger.info(
            "authorization denied", extra={"client_id": decision.principal_id, "reason": decision.reason}
        )
        count("AuthDenied")
    return response
