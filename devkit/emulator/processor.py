"""A payment processor simulator with a real processor's idempotency and lookup semantics.

What it does, as a card processor (Stripe's rules) would:

- ``POST <path>`` with ``Idempotency-Key`` creates a charge: ``200 {"outcome": "approved", "reference"}``,
  or ``402 {"outcome": "declined", "decline_code"}`` for tokens starting ``tok_decline``.
- Keys are kept ``key_retention_s`` (24 h). The same key with the same body returns the stored
  answer (no new charge); with a different body, ``400 idempotency_error``; while the first request
  is still being processed, ``409``. After retention the key is forgotten: the same request
  charges again (which is why the platform reconciles by lookup, never by re-charging).
- ``GET <path>?reference=<transaction id>`` returns the charge made for that reference (charges are
  kept forever), or ``404``.
- ``Authorization: Bearer <credential>`` is required when a credential is configured.

:class:`Ledger` is the processor (thread-safe, clock injectable, every charge recorded for tests to
assert on). :class:`ProcessorServer` serves it over HTTPS on 127.0.0.1 with a certificate from a
throw-away CA (``ca_bundle`` is the PEM a client trusts through ``PROCESSOR_CA_BUNDLE``). Faults for
tests: :meth:`Ledger.inject` makes the next POST lose its answer after charging, stall, answer 5xx
before or after charging, or redirect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY_RETENTION_S = 24 * 3600
DECLINE_PREFIX = "tok_decline"
# Where the "redirect" fault points (tests aim it at a server of their own to prove nothing follows).
REDIRECT_LOCATION = "https://127.0.0.2:1/elsewhere"
FAULTS = frozenset(
    {"drop_after_charge", "stall_after_charge", "error_after_charge", "error_before", "redirect"}
)


@dataclass
class Charge:
    charge_id: str
    reference: str
    outcome: str
    decline_code: str | None
    body: dict[str, Any]
    created_at: float

    def answer(self) -> tuple[int, bytes]:
        document: dict[str, Any] = {
            "id": self.charge_id,
            "reference": self.charge_id,
            "outcome": self.outcome,
        }
        if self.decline_code:
            document["decline_code"] = self.decline_code
        return (200 if self.outcome == "approved" else 402), json.dumps(document).encode()


@dataclass
class _Key:
    body_hash: str
    stored_at: float
    answer: tuple[int, bytes] | None = None  # None while the first request is in flight


@dataclass
class Ledger:
    """The processor's state: charges (forever) and idempotency keys (``key_retention_s``)."""

    credential: str | None = None
    key_retention_s: float = KEY_RETENTION_S
    clock: Callable[[], float] = time.time
    charges: list[Charge] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _keys: dict[str, _Key] = field(default_factory=dict)
    _faults: list[str] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- test helpers --------------------------------------------------------------------------
    def inject(self, *faults: str) -> None:
        """Apply ``faults`` to the next POSTs, one each (see FAULTS)."""
        unknown = set(faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        with self._lock:
            self._faults.extend(faults)

    def charges_for(self, reference: str) -> list[Charge]:
        with self._lock:
            return [c for c in self.charges if c.reference == reference]

    def forget_keys(self) -> None:
        """As if the retention period had passed for every key."""
        with self._lock:
            self._keys.clear()

    # -- the API -------------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str | None]:
        """(status, payload, fault) for one request; ``fault`` tells the server how to misbehave."""
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append({"method": method, "target": target, "headers": lowered, "body": body})
        if self.credential is not None and lowered.get("authorization") != f"Bearer {self.credential}":
            return _error(401, "authentication_error", "invalid credential")
        if method == "GET":
            query = parse_qs(urlsplit(target).query)
            reference = (query.get("reference") or [""])[0]
            found = self.charges_for(reference)
            if not found:
                return _error(404, "resource_missing", "no charge with this reference")
            return 200, found[0].answer()[1], None
        if method != "POST":
            return _error(405, "invalid_request_error", "method not allowed")
        return self._post(lowered.get("idempotency-key"), body)

    def _post(  # noqa: PLR0911 - one answer per idempotency rule, as the processor documents them
        self, key: str | None, body: bytes
    ) -> tuple[int, bytes, str | None]:
        try:
            document = json.loads(body)
        except ValueError:
            return _error(400, "invalid_request_error", "body is not JSON")
        if not key:
            return _error(400, "invalid_request_error", "Idempotency-Key is required")
        body_hash = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            if fault == "error_before":
                return _error(503, "api_error", "try again")
            if fault == "redirect":
                return 302, b"", "redirect"
            now = self.clock()
            stored = self._keys.get(key)
            if stored is not None and now - stored.stored_at >= self.key_retention_s:
                stored = None
            if stored is not None:
                if stored.body_hash != body_hash:
                    return _error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters",
                    )
                if stored.answer is None:
                    return _error(409, "idempotency_error", "a request with this key is in progress")
                return (*stored.answer, fault)
            self._keys[key] = _Key(body_hash, now)
            token = str(document.get("token") or "")
            declined = token.startswith(DECLINE_PREFIX)
            charge = Charge(
                charge_id=f"ch_{len(self.charges) + 1:06d}_{hashlib.sha256(key.encode()).hexdigest()[:10]}",
                reference=str(document.get("reference") or ""),
                outcome="declined" if declined else "approved",
                decline_code="card_declined" if declined else None,
                body=document,
                created_at=now,
            )
            self.charges.append(charge)
            answer = charge.answer()
            self._keys[key].answer = answer
        if fault == "error_after_charge":
            return _error(500, "api_error", "internal error")
        return (*answer, fault)


def _error(status: int, kind: str, message: str) -> tuple[int, bytes, None]:
    return status, json.dumps({"error": {"type": kind, "message": message}}).encode(), None


# ---------------------------------------------------------------------------------- HTTPS server


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost: (ca, cert, key) PEM paths."""
    from cryptography import x509  # noqa: PLC0415 - only the simulator needs it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "processor-simulator test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, fault = self.server.ledger.handle(method, self.path, dict(self.headers), body)
        if fault == "drop_after_charge":
            self.close_connection = True
            return  # the charge happened; the client never hears about it
        if fault == "stall_after_charge":
            time.sleep(self.server.stall_s)
            self.close_connection = True
            return
        self.send_response(status)
        if fault == "redirect":
            self.send_header("Location", REDIRECT_LOCATION)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def log_message(self, *_: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ledger: Ledger
    stall_s: float


@dataclass
class ProcessorServer:
    """The ledger served over HTTPS on 127.0.0.1 (an ephemeral port)."""

    ledger: Ledger
    endpoint: str
    ca_bundle: Path
    _server: _Server
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serve(
    ledger: Ledger | None = None, *, stall_s: float = 1.0, path: str = "/v1/charges"
) -> Iterator[ProcessorServer]:
    """Run the simulator over HTTPS for the duration of the block."""
    ledger = ledger or Ledger()
    with tempfile.TemporaryDirectory(prefix="processor-sim-") as scratch:
        ca, cert, key = make_certificates(Path(scratch))
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.ledger = ledger
        httpd.stall_s = stall_s
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, name="processor-sim", daemon=True)
        thread.start()
        server = ProcessorServer(
            ledger, f"https://127.0.0.1:{httpd.server_address[1]}{path}", ca, httpd, thread
        )
        try:
            yield server
        finally:
            server.close()
