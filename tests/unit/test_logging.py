"""Nothing sensitive reaches the logs: no card number, no API key, no token, no body."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from payments.handlers import _runtime, intake, retry, status

from tests.unit.awsenv import API_KEY_VALUE, AwsEnv, FakeContext, api_event, payment
from tests.unit.flows import create, run_workflow

CARD = "4111 1111 1111 1111"
CARD_DIGITS = CARD.replace(" ", "")
TOKEN = "tok_secret_abcdef123456"


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_like_numbers(text: str) -> list[str]:
    """Independent scanner: separators between digits removed, then 13-19 digit runs."""
    joined = re.sub(r"(?<=\d)[ -](?=\d)", "", text)
    hits = []
    for match in re.finditer(r"\d+", joined):
        run = match.group(0)
        for size in range(13, 20):
            for start in range(0, len(run) - size + 1):
                if len(run) <= 19 and luhn(run[start : start + size]) and size == len(run):
                    hits.append(run)
    return hits


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything the handlers' Powertools logger writes, plus other loggers via caplog."""
    buffer = io.StringIO()
    handler = _runtime.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    caplog.set_level(logging.INFO)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def strip_metric_timestamps(line: str) -> str:
    # EMF metric lines carry an epoch-millisecond Timestamp (13 digits): metrics, not card data.
    try:
        document = json.loads(line)
    except ValueError:
        return line
    if isinstance(document, dict) and "_aws" in document:
        document["_aws"].pop("Timestamp", None)
    return json.dumps(document)


def test_handler_logs_contain_no_card_numbers_api_keys_or_tokens(
    aws: AwsEnv,
    captured: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = FakeContext()
    # Refused requests carrying card data in every shape.
    for body in (
        payment(metadata={"card": CARD}),
        payment(description=f"pay with {CARD_DIGITS}"),
        payment(payment_method={"type": "card", "token": CARD_DIGITS}),
    ):
        intake.handler(api_event("POST", "/transactions", body, idempotency_key="k-card"), ctx)
    intake.handler(
        api_event("POST", "/transactions", raw_body='{"pan": "' + CARD + '"', idempotency_key="k"), ctx
    )
    intake.handler(api_event("POST", "/validate", payment(amount="1.001")), ctx)

    # Accepted payments through the whole workflow, a replay, a status read, a failure and a retry.
    body = payment(payment_method={"type": "card", "token": TOKEN})
    txn = create(body, key="k-ok")["transaction_id"]
    create(body, key="k-ok")
    run_workflow(txn)
    status.handler(api_event("GET", "/transactions/{id}", path_parameters={"id": txn}), ctx)
    aws.set_processor("http://127.0.0.1:9/")
    failing = create(payment(payment_method={"type": "card", "token": TOKEN}), key="k-fail")["transaction_id"]
    run_workflow(failing)
    retry.handler({"Records": [{"messageId": "m-1", "body": json.dumps({"transaction_id": failing})}]}, ctx)

    # An unexpected exception whose message quotes a card number: the formatter masks it.
    services = _runtime.services()

    def leaky(**_: Any) -> None:
        raise RuntimeError(f"driver error near {CARD_DIGITS}")

    monkeypatch.setattr(services.repo.ddb, "transact_write_items", leaky)
    response = intake.handler(api_event("POST", "/transactions", payment(), idempotency_key="k-500"), ctx)
    assert response["statusCode"] == 500

    logs = captured.getvalue()
    out = capsys.readouterr()
    records = caplog.text
    everything = "\n".join(
        strip_metric_timestamps(line) for line in (logs + out.out + out.err + records).splitlines()
    )

    assert logs.count("\n") > 10, "expected the handlers to have logged"
    assert "[REDACTED-PAN]" in logs  # the exception message was masked, not dropped
    assert card_like_numbers(everything) == []
    assert CARD_DIGITS not in everything and CARD not in everything
    assert API_KEY_VALUE not in everything
    assert TOKEN not in everything
    assert '"merchant_id": "merch_123", "customer_id"' not in everything  # no request body
    for line in logs.splitlines():
        entry = json.loads(line)
        assert entry["level"] in {"INFO", "WARNING", "ERROR"}
        assert entry.get("correlation_id"), entry


def test_log_lines_keep_their_timestamp_and_stay_json_when_values_are_masked(
    captured: io.StringIO,
) -> None:
    """The formatter masks field by field: its own timestamp survives even when the digits of a
    timestamp happen to pass the Luhn check, and a card number logged as a JSON number is
    replaced by a string, not by bare text that would break the line."""
    _runtime.logger.info("charged", extra={"card_as_number": int(CARD_DIGITS), "note": f"card {CARD}"})
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    entry = next(line for line in lines if line.get("message") == "charged")
    assert entry["card_as_number"] == "[REDACTED-PAN]"
    assert entry["note"] == "card [REDACTED-PAN]"
    assert "REDACTED" not in entry["timestamp"]
    assert re.match(r"\d{4}-\d{2}-\d{2}", entry["timestamp"])


def test_a_luhn_valid_timestamp_is_not_masked_by_the_formatter() -> None:
    from payments import pan

    stamp = next(
        f"2026-11-29 16:25:{s:02d},{ms:03d}+0000"
        for s in range(60)
        for ms in range(1000)
        if pan.contains_pan(f"2026-11-29 16:25:{s:02d},{ms:03d}+0000")
    )
    formatter = _runtime.MaskingFormatter()
    line = formatter.serialize({"timestamp": stamp, "level": "INFO", "message": f"at {stamp}"})  # type: ignore[arg-type]
    entry = json.loads(line)
    assert entry["timestamp"] == stamp  # generated by the runtime: never masked
    assert entry["message"].startswith("at [REDACTED-PAN]")  # the same digits in free text are
