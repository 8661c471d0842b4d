"""Who is calling: the principal the API's Lambda authorizer put in the request context, and the
merchant scope every API operation enforces (docs/interfaces.md "Authorization").

API Gateway passes the authorizer's context to the integration as
``requestContext.authorizer`` (``client_id``, ``kind``, ``merchants`` space-separated). A request
for a merchant outside the scope is refused with 403 ``merchant_not_allowed`` before anything is
stored or charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payments.errors import ApiError


@dataclass(frozen=True)
class Principal:
    client_id: str
    kind: str
    merchants: frozenset[str]

    def may_act_for(self, merchant_id: str | None) -> bool:
        return merchant_id is not None and merchant_id in self.merchants


def from_event(event: Any) -> Principal | None:
    """The authorizer's principal, or None when the request did not pass through an authorizer."""
    if not isinstance(event, Mapping):
        return None
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    if not isinstance(authorizer, Mapping) or not authorizer.get("client_id"):
        return None
    merchants = str(authorizer.get("merchants") or "").split()
    return Principal(str(authorizer["client_id"]), str(authorizer.get("kind") or ""), frozenset(merchants))


class MerchantNotAllowed(ApiError):
    status = 403
    type = "permission_error"

    def __init__(self) -> None:
        super().__init__(
            "merchant_not_allowed",
            "This client may not act for the merchant given.",
            "merchant_id",
        )


class PrincipalMissing(ApiError):
    """The request reached the function without the authorizer's principal although one is required:
    the route is not behind the authorizer (a misconfigured or bypassed gateway). Refused, as the
    gateway refuses a request without credentials, instead of serving it without a merchant scope."""

    status = 401
    type = "authentication_error"

    def __init__(self) -> None:
        super().__init__(
            "unauthenticated",
            "Missing or malformed credentials: send Authorization: Bearer <key id>.<secret>",
        )


def require_principal(principal: Principal | None, required: bool) -> None:
    """401 when no authorizer principal came with the request and the deployment requires one
    (REQUIRE_PRINCIPAL, on by default; off only where the gateway cannot run authorizers)."""
    if principal is None and required:
        raise PrincipalMissing


def require_merchant(principal: Principal | None, merchant_id: str | None) -> None:
    """403 unless the principal may act for ``merchant_id`` (no principal: no authorizer ran, and
    API Gateway's own access control is the only one; see SECURITY.md)."""
    if principal is not None and not principal.may_act_for(merchant_id):
        raise MerchantNotAllowed


def visible(principal: Principal | None, merchant_id: str | None) -> bool:
    """Whether a stored transaction of ``merchant_id`` may be shown to the principal."""
    return principal is None or principal.may_act_for(merchant_id)


def idempotency_scope(principal: Principal | None, api_key_id: str | None) -> str | None:
    """Idempotency keys belong to the authenticated client (else to the API key, as before)."""
    return f"client:{principal.client_id}" if principal is not None else api_key_id
