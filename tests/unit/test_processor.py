"""payments.processor against the HTTPS processor simulator (127.0.0.1 only, a throw-away CA)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from payments.errors import ProcessorUnavailable
from payments.processor import (
    ChargeRequest,
    OutcomeUnknown,
    Processor,
    ProcessorMisconfigured,
    simulate,
)

from devkit.emulator.processor import Ledger, ProcessorServer

REQUEST = ChargeRequest("txn_1", 10050, "USD", "tok_visa", "merch_1")


def processor(endpoint: str, credentials: str | None = "s3cr3t") -> Processor:
    def get(name: str, **_: Any) -> Any:
        if name == "endpoint":
            return endpoint
        if credentials is None:
            raise LookupError("no such parameter")
        return credentials

    return Processor(get, "endpoint", "credentials")


def test_charge_request_is_a_pure_function_of_the_transaction() -> None:
    again = ChargeRequest("txn_1", 10050, "USD", "tok_visa", "merch_1")
    assert again.body() == REQUEST.body()
    assert again.idempotency_key == REQUEST.idempotency_key == "txn_1"
    assert json.loads(REQUEST.body()) == {
        "amount_minor": 10050,
        "currency": "USD",
        "merchant_id": "merch_1",
        "reference": "txn_1",
        "token": "tok_visa",
    }
    assert b"attempt" not in REQUEST.body()


def test_simulator_approves_and_declines_by_token() -> None:
    assert simulate(REQUEST).approved
    declined = simulate(ChargeRequest("txn_1", 1, "USD", "tok_decline_x", "m"))
    assert not declined.approved and declined.decline_code == "card_declined"
    assert simulate(REQUEST).reference == simulate(REQUEST).reference


@pytest.mark.parametrize(
    "endpoint",
    [
        "sim://decline-everything",
        "ftp://127.0.0.1/",
        "http://127.0.0.1:9/",  # plain HTTP: never, not even to localhost
        "https://user:pw@127.0.0.1/",
        "https:///no-host",
    ],
)
def test_anything_but_https_is_refused_before_any_request(endpoint: str) -> None:
    with pytest.raises(ProcessorMisconfigured):
        processor(endpoint).charge(REQUEST)


def test_charge_sends_the_key_and_credential_and_records_one_charge(processor_sim: ProcessorServer) -> None:
    result = processor(processor_sim.endpoint).charge(REQUEST)
    again = processor(processor_sim.endpoint).charge(REQUEST)

    assert result.approved and result.reference.startswith("ch_")
    assert again == result  # the same key and body: the stored answer, no second charge
    assert len(processor_sim.ledger.charges_for("txn_1")) == 1
    post = processor_sim.ledger.requests[0]
    assert post["headers"]["idempotency-key"] == "txn_1"
    assert post["headers"]["authorization"] == "Bearer s3cr3t"
    assert post["body"] == REQUEST.body()


def test_an_unreadable_credential_is_logged_and_the_call_goes_without_one(
    processor_sim: ProcessorServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="payments.processor"):
        result = processor(processor_sim.endpoint, credentials=None).charge(REQUEST)

    assert result.approved
    assert "authorization" not in processor_sim.ledger.requests[0]["headers"]
    (record,) = [r for r in caplog.records if r.name == "payments.processor"]
    assert record.levelno == logging.WARNING
    assert "credentials" in record.getMessage() and "LookupError" in record.getMessage()
    assert "no such parameter" not in record.getMessage()  # the type, not what the store said


def test_declines_come_back_as_results(processor_sim: ProcessorServer) -> None:
    declined = ChargeRequest("txn_2", 500, "EUR", "tok_decline_insufficient", "merch_1")

    result = processor(processor_sim.endpoint).charge(declined)

    assert (result.approved, result.decline_code) == (False, "card_declined")
    assert processor(processor_sim.endpoint).lookup(declined) == result


def test_same_key_with_another_body_is_an_unknown_outcome_not_a_new_charge(
    processor_sim: ProcessorServer,
) -> None:
    client = processor(processor_sim.endpoint)
    first = client.charge(REQUEST)
    changed = ChargeRequest("txn_1", 10051, "USD", "tok_visa", "merch_1")

    with pytest.raises(OutcomeUnknown, match="HTTP 400"):
        client.charge(changed)

    assert client.lookup(REQUEST) == first
    assert len(processor_sim.ledger.charges_for("txn_1")) == 1


@pytest.mark.parametrize("fault", ["drop_after_charge", "stall_after_charge", "error_after_charge"])
def test_a_lost_answer_is_unknown_and_the_lookup_finds_the_charge(
    processor_sim: ProcessorServer, fault: str
) -> None:
    processor_sim.ledger.inject(fault)
    client = processor(processor_sim.endpoint)

    with pytest.raises(OutcomeUnknown):
        client.charge(REQUEST)

    found = client.lookup(REQUEST)
    assert found is not None and found.approved
    assert len(processor_sim.ledger.charges_for("txn_1")) == 1


def test_lookup_of_a_charge_never_made_is_none(processor_sim: ProcessorServer) -> None:
    assert processor(processor_sim.endpoint).lookup(REQUEST) is None


def test_wrong_credential_is_refused_by_the_processor(processor_sim: ProcessorServer) -> None:
    processor_sim.ledger.credential = "the-real-one"

    with pytest.raises(OutcomeUnknown, match="HTTP 401"):
        processor(processor_sim.endpoint).charge(REQUEST)

    assert processor_sim.ledger.charges == []


class ThirdParty(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        ThirdParty.seen.append(dict(self.headers))
        body = b'{"outcome": "approved", "reference": "ch_fake"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def third_party() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ThirdParty)
    ThirdParty.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/collect"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_is_not_followed_and_the_credential_goes_nowhere_else(
    processor_sim: ProcessorServer, third_party: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression (issue 15, defect 5): a 302 used to re-send the Bearer credential and the key to
    # the Location host, whose "approved" was then believed.
    monkeypatch.setattr("devkit.emulator.processor.REDIRECT_LOCATION", third_party)
    processor_sim.ledger.inject("redirect")
    client = processor(processor_sim.endpoint)

    with pytest.raises(OutcomeUnknown, match="HTTP 302"):
        client.charge(REQUEST)

    assert ThirdParty.seen == []
    assert client.lookup(REQUEST) is None  # and nothing was charged: the settlement stays unpaid


def test_unreachable_endpoint_is_unavailable_and_surely_not_charged() -> None:
    with pytest.raises(ProcessorUnavailable, match="unreachable") as caught:
        processor("https://127.0.0.1:9/").charge(REQUEST)
    assert not isinstance(caught.value, OutcomeUnknown)


def test_an_untrusted_certificate_is_refused(
    processor_sim: ProcessorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROCESSOR_CA_BUNDLE")

    with pytest.raises(ProcessorUnavailable) as caught:
        processor(processor_sim.endpoint).charge(REQUEST)

    assert not isinstance(caught.value, OutcomeUnknown)
    assert processor_sim.ledger.charges == []


def test_keys_expire_after_retention_like_a_real_processor() -> None:
    now = [1_000.0]
    ledger = Ledger(clock=lambda: now[0])
    body = REQUEST.body()
    headers = {"Idempotency-Key": "txn_1"}

    first = ledger.handle("POST", "/v1/charges", headers, body)
    now[0] += 24 * 3600 - 1
    replay = ledger.handle("POST", "/v1/charges", headers, body)
    now[0] += 2
    after_retention = ledger.handle("POST", "/v1/charges", headers, body)

    assert first == replay
    assert after_retention[0] == 200 and after_retention != first
    assert len(ledger.charges_for("txn_1")) == 2  # what reconciliation-before-charging prevents
