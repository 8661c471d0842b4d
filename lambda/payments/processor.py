"""Payment processor client (docs/interfaces.md, "Settlement protocol" and "Processor API").

The endpoint comes from SSM (PROCESSOR_ENDPOINT_PARAM, cached 60 s):

- ``https://host[:port]/path``: the processor's charges resource. ``POST`` creates a charge,
  ``GET ?reference=<transaction id>`` looks one up. HTTPS only, TLS verified against the system
  trust store (plus ``PROCESSOR_CA_BUNDLE`` when set, for a processor behind a private CA), no
  redirects followed: the credential and the idempotency key go to the configured host only.
- ``sim://approve``: in-process, stateless demo simulator; approves, except tokens starting
  ``tok_decline``. It has no memory, so it cannot show idempotency or lookups: use the HTTPS
  simulator (``devkit.emulator.processor``) for that.

The charge request is a pure function of the transaction: the same body and the same
``Idempotency-Key`` (the transaction id) on every attempt, so a repeated request within the
processor's key retention returns the first answer instead of charging again. An answer that
leaves the outcome unknown (time-out, dropped connection, 409 or a 4xx about the idempotency key,
5xx, a redirect) raises :class:`OutcomeUnknown`; the caller then reconciles with
:meth:`Processor.lookup` instead of charging anew. A refused request (400/422, nothing charged) is
a decline with the processor's reason; 429 raises :class:`ProcessorUnavailable` (retry later).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from payments import config
from payments.errors import ProcessorUnavailable

_log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
PARAM_MAX_AGE = 60
SIM_APPROVE = "sim://approve"
DECLINE_PREFIX = "tok_decline"
_MAX_ANSWER_BYTES = 65536
# Answers to a charge (docs/interfaces.md, "Processor answers"): 2xx/402 state the outcome; 400 and
# 422 refuse the request (nothing charged: REJECTED); 429 is "not now" (nothing charged: retry);
# 409, other 4xx, 5xx and no answer leave the outcome unknown (reconcile by lookup).
REFUSED_REQUEST = frozenset({400, 422})
NOT_NOW = frozenset({429})

# (method, url, headers, body, timeout) -> (status, payload). Raises OSError (and subclasses,
# TimeoutError included) when no answer arrived; ``sent`` on the error says whether the request
# may have reached the processor.
Transport = Callable[[str, str, Mapping[str, str], bytes | None, float], tuple[int, bytes]]


class OutcomeUnknown(ProcessorUnavailable):
    """The charge may or may not have happened: reconcile by lookup, never charge as new."""


class ProcessorMisconfigured(ProcessorUnavailable):
    """The endpoint parameter is not an https:// URL (or a known simulator)."""


@dataclass(frozen=True)
class ProcessorResult:
    approved: bool
    reference: str
    decline_code: str | None = None

    @property
    def outcome(self) -> str:
        return "approved" if self.approved else "declined"


@dataclass(frozen=True)
class ChargeRequest:
    """Everything the processor is told about a charge: derived from the transaction only."""

    transaction_id: str
    amount_minor: int
    currency: str
    token: str
    merchant_id: str

    @property
    def idempotency_key(self) -> str:
        return self.transaction_id

    def body(self) -> bytes:
        """Canonical JSON: byte-for-byte the same on every attempt."""
        document = {
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "merchant_id": self.merchant_id,
            "reference": self.transaction_id,
            "token": self.token,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def simulate(request: ChargeRequest) -> ProcessorResult:
    reference = "sim_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
    if request.token.startswith(DECLINE_PREFIX):
        return ProcessorResult(approved=False, reference=reference, decline_code="card_declined")
    return ProcessorResult(approved=True, reference=reference)


def parse_answer(status: int, payload: bytes) -> ProcessorResult | None:
    """The outcome in a processor answer; None when the answer does not state one."""
    try:
        data = json.loads(payload.decode("utf-8")) if payload else {}
    except (UnicodeDecodeError, ValueError):
        data = {}
    if not isinstance(data, Mapping):
        data = {}
    reference = str(data.get("reference") or data.get("id") or "")[:128]
    decline = str(data.get("decline_code") or "card_declined")[:64]
    if status == 402:
        return ProcessorResult(False, reference, decline)
    if status in REFUSED_REQUEST and not _names_idempotency(data):
        # The request itself was refused (bad token, closed account, invalid field): nothing was
        # charged, and the same request will be refused again. Final, with the processor's reason.
        return ProcessorResult(False, reference, _refusal_code(data))
    if not 200 <= status < 300:
        return None
    outcome = str(data.get("outcome", "")).lower()
    if outcome == "approved":
        return ProcessorResult(True, reference)
    if outcome == "declined":
        return ProcessorResult(False, reference, decline)
    return None


def _error_detail(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The nested ``{"error": {...}}`` object of a Stripe-shaped answer, else the answer itself."""
    nested = data.get("error")
    return nested if isinstance(nested, Mapping) else data


def _names_idempotency(data: Mapping[str, Any]) -> bool:
    """A 4xx about the idempotency key (reused with another body, still in flight) says nothing
    about the charge: the outcome stays unknown."""
    detail = _error_detail(data)
    fields = [data.get(k) for k in ("code", "error", "type")] + [detail.get(k) for k in ("code", "type")]
    return any("idempoten" in str(v).lower() for v in fields if isinstance(v, str))


def _refusal_code(data: Mapping[str, Any]) -> str:
    """The processor's reason for refusing a request (its decline code, else its error code)."""
    detail = _error_detail(data)
    for value in (data.get("decline_code"), detail.get("decline_code"), data.get("code"), detail.get("code")):
        if isinstance(value, str) and value:
            return value[:64]
    error = data.get("error")
    if isinstance(error, str) and error:
        return error[:64]
    return str(detail.get("type") or "invalid_request")[:64]


def check_endpoint(endpoint: str) -> None:
    """HTTPS with a host, no credentials in the URL: anything else is a configuration error."""
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise ProcessorMisconfigured("processor endpoint must be an https:// URL (or sim://approve)")
    if parts.username or parts.password:
        raise ProcessorMisconfigured("processor endpoint must not carry credentials")


def urllib_transport(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> tuple[int, bytes]:
    """HTTPS request through an opener that follows no redirect (a 3xx is returned as is)."""
    # Imported here: urllib.request drags in http.client and email parsing, which only the
    # settlement step needs, and only for a real processor.
    import ssl  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # urllib then raises HTTPError with the 3xx status

    check_endpoint(url)
    context = ssl.create_default_context()
    bundle = config.processor_ca_bundle()
    if bundle:
        context.load_verify_locations(cafile=bundle)
    # Only HTTPS and no redirect handler that could send the request elsewhere.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPSHandler(context=context),
        NoRedirect(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310 - https checked
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), response.read(_MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(_MAX_ANSWER_BYTES)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, OSError):
            raise reason from None
        raise OSError(str(reason)) from None


def _timeout() -> float:
    return config.processor_timeout_seconds(TIMEOUT_SECONDS)


def _refused_before_sending(exc: OSError) -> bool:
    # Nothing reached the processor: connection refused, DNS failure, TLS verification failed.
    import socket  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    return isinstance(exc, (ConnectionRefusedError, ssl.SSLCertVerificationError, socket.gaierror))


@dataclass
class Processor:
    """Resolves the endpoint on every call (cached by the parameter client)."""

    get_parameter: Callable[..., Any]
    endpoint_param: str
    credentials_param: str
    transport: Transport = urllib_transport

    def endpoint(self) -> str:
        value = self.get_parameter(self.endpoint_param, max_age=PARAM_MAX_AGE)
        return str(value or SIM_APPROVE).strip()

    def _credentials(self) -> str | None:
        """The processor's credential; None (the call goes without one) when it cannot be read."""
        try:
            value = self.get_parameter(self.credentials_param, max_age=PARAM_MAX_AGE, decrypt=True)
        except Exception as exc:
            # The error's type only: nothing said while a secret is read goes to the log.
            _log.warning(
                "processor credential %s not read (%s): calling without one",
                self.credentials_param,
                type(exc).__name__,
            )
            return None
        return str(value) if value else None

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if idempotency_key is not None:
            headers["Content-Type"] = "application/json"
            headers["Idempotency-Key"] = idempotency_key
        credentials = self._credentials()
        if credentials:
            headers["Authorization"] = f"Bearer {credentials}"
        return headers

    def charge(self, request: ChargeRequest) -> ProcessorResult:
        """Create the charge. ProcessorUnavailable if surely not sent, OutcomeUnknown otherwise."""
        endpoint = self.endpoint()
        if endpoint.startswith("sim://"):
            if endpoint != SIM_APPROVE:
                raise ProcessorMisconfigured("unknown simulator endpoint")
            return simulate(request)
        check_endpoint(endpoint)
        try:
            status, payload = self.transport(
                "POST", endpoint, self._headers(request.idempotency_key), request.body(), _timeout()
            )
        except OSError as exc:
            if _refused_before_sending(exc):
                raise ProcessorUnavailable(f"processor unreachable: {type(exc).__name__}") from None
            raise OutcomeUnknown(f"no answer from the processor: {type(exc).__name__}") from None
        if status in NOT_NOW:
            raise ProcessorUnavailable("processor answered HTTP 429: try later")
        result = parse_answer(status, payload)
        if result is None:
            raise OutcomeUnknown(f"processor answered HTTP {status} without an outcome")
        return result

    def lookup(self, request: ChargeRequest) -> ProcessorResult | None:
        """The charge made for ``request`` (by reference), or None if the processor has none.

        Raises ProcessorUnavailable when the processor cannot say.
        """
        endpoint = self.endpoint()
        if endpoint.startswith("sim://"):
            return None  # stateless: it never remembers a charge; charging again gives the same answer
        check_endpoint(endpoint)
        separator = "&" if urlsplit(endpoint).query else "?"
        url = f"{endpoint}{separator}{urlencode({'reference': request.transaction_id})}"
        try:
            status, payload = self.transport("GET", url, self._headers(None), None, _timeout())
        except OSError as exc:
            raise ProcessorUnavailable(f"processor lookup failed: {type(exc).__name__}") from None
        if status == 404:
            return None
        if status in REFUSED_REQUEST or status in NOT_NOW:
            # A refused lookup is no statement about the charge.
            raise ProcessorUnavailable(f"processor lookup answered HTTP {status}")
        result = parse_answer(status, payload)
        if result is None:
            raise ProcessorUnavailable(f"processor lookup answered HTTP {status}")
        return result
