"""payments.processor: the simulator and the HTTP client against a local server (127.0.0.1 only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from payments.errors import ProcessorUnavailable
from payments.processor import ChargeRequest, Processor, simulate

REQUEST = ChargeRequest("txn_1", 2, 10050, "USD", "tok_visa", "merch_1")


class Recorder(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, bytes]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        Recorder.seen.append({"headers": dict(self.headers), "body": body})
        status, payload = Recorder.answers.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.answers, Recorder.seen = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/charge"
    finally:
        httpd.shutdown()
        httpd.server_close()


def processor(endpoint: str, credentials: str | None = "s3cr3t") -> Processor:
    def get(name: str, **_: Any) -> Any:
        if name == "endpoint":
            return endpoint
        if credentials is None:
            raise LookupError("no such parameter")
        return credentials

    return Processor(get, "endpoint", "credentials")


def test_simulator_approves_and_declines_by_token() -> None:
    assert simulate(REQUEST).approved
    declined = simulate(ChargeRequest("txn_1", 1, 1, "USD", "tok_decline_x", "m"))
    assert not declined.approved and declined.decline_code == "card_declined"
    assert simulate(REQUEST).reference == simulate(REQUEST).reference  # same attempt, same reference


def test_unknown_simulator_or_scheme_is_unavailable() -> None:
    with pytest.raises(ProcessorUnavailable):
        processor("sim://decline-everything").charge(REQUEST)
    with pytest.raises(ProcessorUnavailable):
        processor("ftp://127.0.0.1/").charge(REQUEST)


def test_http_approval_sends_idempotency_key_and_credentials(server: str) -> None:
    Recorder.answers = [(200, b'{"outcome": "approved", "reference": "ch_1"}')]

    result = processor(server).charge(REQUEST)

    assert result.approved and result.reference == "ch_1"
    [seen] = Recorder.seen
    assert seen["headers"]["Idempotency-Key"] == "txn_1"  # the same on every attempt
    assert seen["headers"]["Authorization"] == "Bearer s3cr3t"
    assert seen["body"] == {
        "transaction_id": "txn_1",
        "amount_minor": 10050,
        "currency": "USD",
        "token": "tok_visa",
        "merchant_id": "merch_1",
        "attempt": 2,
    }


@pytest.mark.parametrize(
    ("status", "payload", "approved", "code"),
    [
        (200, b'{"outcome": "declined", "decline_code": "insufficient_funds"}', False, "insufficient_funds"),
        (402, b'{"reference": "ch_2"}', False, "card_declined"),
        (402, b"not json", False, "card_declined"),
    ],
)
def test_http_declines(server: str, status: int, payload: bytes, approved: bool, code: str) -> None:
    Recorder.answers = [(status, payload)]

    result = processor(server, credentials=None).charge(REQUEST)

    assert (result.approved, result.decline_code) == (approved, code)
    assert "Authorization" not in Recorder.seen[0]["headers"]


@pytest.mark.parametrize(
    ("status", "payload"), [(500, b"{}"), (503, b""), (200, b'{"outcome": "maybe"}'), (200, b"[]")]
)
def test_http_errors_are_unavailable(server: str, status: int, payload: bytes) -> None:
    Recorder.answers = [(status, payload)]

    with pytest.raises(ProcessorUnavailable):
        processor(server).charge(REQUEST)


def test_unreachable_endpoint_is_unavailable() -> None:
    with pytest.raises(ProcessorUnavailable, match="unreachable"):
        processor("http://127.0.0.1:9/").charge(REQUEST)
