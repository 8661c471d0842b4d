"""200 concurrent creates carrying 50 duplicated Idempotency-Keys."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber
from payments.handlers import intake

from tests.unit.awsenv import AwsEnv, FakeContext, api_event, payment


@pytest.fixture
def serialized_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's in-process backends answer one request at a time.

    DynamoDB serialises conflicting transactions itself; moto's TransactWriteItems is not
    thread-safe (it snapshots and restores whole tables), so without this the emulator,
    not the code under test, would lose writes. Requests from the 200 threads still
    interleave freely between calls, which is where the races under test live.
    """
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)


def test_concurrent_duplicates_create_exactly_one_transaction_per_key(
    aws: AwsEnv, serialized_emulator: None
) -> None:
    unique_keys = [f"order-{i:03d}" for i in range(150)]
    requests = [(key, i) for i, key in enumerate(unique_keys)] + [
        (key, i) for i, key in enumerate(unique_keys[:50])
    ]
    assert len(requests) == 200
    # Interleave: each duplicate is sent right next to its original; the first 32 requests
    # are released together so the duplicates among them genuinely race.
    requests.sort(key=lambda r: (r[1], r[0]))
    start = threading.Barrier(32, timeout=30)

    def send(indexed: tuple[int, tuple[str, int]]) -> tuple[str, dict[str, Any]]:
        position, (key, n) = indexed
        if position < 32:
            start.wait()
        body = payment(amount=f"{10 + n}.00", reference=key)
        event = api_event("POST", "/transactions", body, idempotency_key=key)
        return key, intake.handler(event, FakeContext())

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(send, enumerate(requests), timeout=120))

    replayed = sum(1 for _, r in results if r["headers"].get("Idempotent-Replayed") == "true")
    assert replayed == 50
    answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, response in results:
        assert response["statusCode"] == 202, response["body"]
        answers[key].append(json.loads(response["body"]))

    for key in unique_keys[:50]:
        first, second = answers[key]
        assert first == second, key
    transactions = aws.transactions()
    assert len(transactions) == 150
    assert sorted(t["reference"] for t in transactions) == unique_keys
    assert {a[0]["transaction_id"] for a in answers.values()} == {t["transaction_id"] for t in transactions}
    assert aws.count("IDEMPOTENCY_TABLE") == 150
    assert aws.count("AUDIT_TABLE") == 150
    executions = aws.executions()
    assert len(executions) == 150
    assert {e["name"] for e in executions} == {t["transaction_id"] for t in transactions}
