"""Payment processor client.

The endpoint comes from SSM (PROCESSOR_ENDPOINT_PARAM, cached 60 s):

- ``sim://approve``: in-process simulator; approves, except tokens starting
  ``tok_decline`` which are declined (``card_declined``).
- ``http(s)://...``: POST JSON with a 5 s timeout. 2xx ``{"outcome": "approved"|"declined",
  "reference", "decline_code"}``, or 402 = declined; anything else is ProcessorUnavailable
  (the workflow step fails and retries).

Each call carries the transaction id as idempotency key, on every attempt: a step retried
after a timeout, or a retry attempt after an approval whose answer was lost, gets the
original answer from the processor instead of a second charge.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payments.errors import ProcessorUnavailable

TIMEOUT_SECONDS = 5.0
PARAM_MAX_AGE = 60
SIM_APPROVE = "sim://approve"
DECLINE_PREFIX = "tok_decline"


@dataclass(frozen=True)
class ProcessorResult:
    approved: bool
    reference: str
    decline_code: str | None = None


@dataclass(frozen=True)
class ChargeRequest:
    transaction_id: str
    attempt: int
    amount_minor: int
    currency: str
    token: str
    merchant_id: str

    @property
    def idempotency_key(self) -> str:
        return self.transaction_id


def simulate(request: ChargeRequest) -> ProcessorResult:
    reference = "sim_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
    if request.token.startswith(DECLINE_PREFIX):
        return ProcessorResult(approved=False, reference=reference, decline_code="card_declined")
    return ProcessorResult(approved=True, reference=reference)


def _parse_http_answer(status: int, payload: bytes) -> ProcessorResult:
    try:
        data = json.loads(payload.decode("utf-8")) if payload else {}
    except (UnicodeDecodeError, ValueError):
        data = {}
    if not isinstance(data, Mapping):
        data = {}
    reference = str(data.get("reference") or "")[:128]
    if status == 402:
        return ProcessorResult(False, reference, str(data.get("decline_code") or "card_declined")[:64])
    outcome = str(data.get("outcome", "")).lower()
    if outcome == "approved":
        return ProcessorResult(True, reference)
    if outcome == "declined":
        return ProcessorResult(False, reference, str(data.get("decline_code") or "card_declined")[:64])
    raise ProcessorUnavailable("processor answered without a recognised outcome")


def charge_http(endpoint: str, request: ChargeRequest, credentials: str | None) -> ProcessorResult:
    # Imported here: urllib.request drags in http.client and email parsing, which only the
    # settlement step needs, and only for a real processor.
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    if not endpoint.startswith(("http://", "https://")):
        raise ProcessorUnavailable("processor endpoint must be sim://approve or an http(s) URL")
    body = json.dumps(
        {
            "transaction_id": request.transaction_id,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "token": request.token,
            "merchant_id": request.merchant_id,
            "attempt": request.attempt,
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": request.idempotency_key}
    if credentials:
        headers["Authorization"] = f"Bearer {credentials}"
    http_request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(http_request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return _parse_http_answer(response.status, response.read(65536))
    except urllib.error.HTTPError as exc:
        if exc.code == 402:
            return _parse_http_answer(402, exc.read(65536))
        raise ProcessorUnavailable(f"processor answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ProcessorUnavailable(f"processor unreachable: {type(exc).__name__}") from None


@dataclass
class Processor:
    """Resolves the endpoint on every charge (cached by the parameter client)."""

    get_parameter: Callable[..., Any]
    endpoint_param: str
    credentials_param: str

    def endpoint(self) -> str:
        value = self.get_parameter(self.endpoint_param, max_age=PARAM_MAX_AGE)
        return str(value or SIM_APPROVE).strip()

    def _credentials(self) -> str | None:
        try:
            value = self.get_parameter(self.credentials_param, max_age=PARAM_MAX_AGE, decrypt=True)
        except Exception:
            return None
        return str(value) if value else None

    def charge(self, request: ChargeRequest) -> ProcessorResult:
        endpoint = self.endpoint()
        if endpoint.startswith("sim://"):
            if endpoint != SIM_APPROVE:
                raise ProcessorUnavailable("unknown simulator endpoint")
            return simulate(request)
        return charge_http(endpoint, request, self._credentials())
