"""Ids, lifecycle table, configuration, audit shapes, fraud rules and request parsing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from payments import audit, config, fraud, ids, states
from payments.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from payments.responses import cors_headers, parse_event
from payments.shards import day_shard, day_shard_key, day_shard_keys, parse_day_shard, shard_of
from payments.validation import schema_document


def test_transaction_ids_are_time_ordered_and_carry_their_timestamp() -> None:
    generated = [ids.new_transaction_id(1_732_364_885_123) for _ in range(100)]
    later = ids.new_transaction_id(1_732_364_885_124)
    assert generated == sorted(generated)
    assert len(set(generated)) == 100
    assert all(i < later for i in generated)
    assert all(ids.is_transaction_id(i) and len(i) == 30 for i in generated)
    assert ids.timestamp_of(later) == 1_732_364_885_124
    with pytest.raises(ValueError):
        ids.timestamp_of("txn_nope")


def test_lifecycle_allows_only_forward_transitions() -> None:
    S = states.Status
    assert states.can_transition("PENDING", "VALIDATING")
    assert states.can_transition("VALIDATING", "SETTLING")
    assert states.can_transition("SETTLING", "COMPLETED")
    assert states.can_transition("FAILED", "SETTLING")
    for terminal in (S.COMPLETED, S.REJECTED):
        assert not any(states.can_transition(terminal, t) for t in S)
    assert not states.can_transition("SETTLING", "VALIDATING")
    assert not states.can_transition("VALIDATING", "PENDING")
    assert not states.can_transition("PENDING", "COMPLETED")
    assert not states.can_transition("BOGUS", "PENDING")
    assert {S.PENDING, S.VALIDATING, S.SETTLING} == states.FAILABLE
    with pytest.raises(states.InvalidTransition):
        states.check_transition("COMPLETED", "FAILED")


def test_day_shard_is_stable_and_bounded() -> None:
    shards = {
        day_shard(ids.new_transaction_id(1_732_364_885_000 + i), 1_732_364_885_000, 16) for i in range(400)
    }
    assert all(s.startswith("2024-11-23#") for s in shards)
    assert {int(s.split("#")[1]) for s in shards} == set(range(16))
    assert day_shard("txn_x", 0, 16) == day_shard("txn_x", 0, 16)


def test_day_shard_keys_are_built_and_parsed_in_one_format() -> None:
    txn = ids.new_transaction_id(1_732_364_885_000)
    assert day_shard(txn, 1_732_364_885_000, 16) == f"2024-11-23#{shard_of(txn, 16):02d}"
    assert day_shard_key("2024-11-23", 7) == "2024-11-23#07"
    assert day_shard_key(dt.date(2024, 11, 23), 42) == "2024-11-23#42"
    assert day_shard_keys("2024-11-23", 3) == ["2024-11-23#00", "2024-11-23#01", "2024-11-23#02"]
    assert parse_day_shard("2024-11-23#07") == (dt.date(2024, 11, 23), 7)
    for bad in ("2024-11-23", "2024-11-23#", "2024-11-23#x"):
        with pytest.raises(ValueError):
            parse_day_shard(bad)
    with pytest.raises(ValueError):
        day_shard_keys("2024-11-23", 0)


def test_settings_read_from_environment() -> None:
    settings = config.load_settings(
        {
            "ENVIRONMENT_SUFFIX": "prod",
            "DAY_SHARDS": "32",
            "IDEMPOTENCY_TTL_HOURS": "1",
            "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example ,",
        }
    )
    assert settings.transactions_table == "payment-transactions-prod"
    assert settings.day_shards == 32
    assert settings.idempotency_ttl_hours == 24  # never below the spec's 24 h
    assert settings.cors_allowed_origins == ("https://a.example", "https://b.example")
    with pytest.raises(ValueError, match="DAY_SHARDS"):
        config.load_settings({"DAY_SHARDS": "many"})
    with pytest.raises(ValueError, match="DAY_SHARDS"):
        config.load_settings({"DAY_SHARDS": "0"})


def test_audit_item_and_fifo_message_shapes() -> None:
    item = audit.audit_item("txn_1", None, "PENDING", 1_732_364_885_123, "intake", 90, {"k": "v"})
    assert item["event_id"] == "1732364885123#PENDING"  # unnumbered: the clock (old entries)
    numbered = audit.audit_item("txn_1", "PENDING", "FAILED", 1_732_364_885_123, "intake", 90, version=3)
    assert numbered["event_id"] == "v0000000003#FAILED"

    assert item["from_status"] == "NONE"
    assert item["at"] == "2024-11-23T12:28:05.123Z"
    assert item["expires_at"] == 1_732_364_885 + 90 * 86400
    pending = audit.stream_entry("PENDING", "VALIDATING", item["at"], "validator", 2, 1)
    entry = audit.fifo_entry("txn_1", pending)
    assert entry["MessageGroupId"] == "txn_1"
    # One id per transition (its version): re-sends are swallowed, a later attempt's SETTLING is not.
    assert entry["MessageDeduplicationId"] == "txn_1#v2"
    assert json.loads(entry["MessageBody"]) == {
        "transaction_id": "txn_1",
        "from_status": "PENDING",
        "to_status": "VALIDATING",
        "at": item["at"],
        "actor": "validator",
        "version": 2,
        "attempt": 1,
    }
    first = audit.fifo_entry("txn_1", audit.stream_entry(None, "PENDING", item["at"], "intake", 1, 1))
    assert json.loads(first["MessageBody"])["from_status"] is None
    assert audit.dedup_id("txn_1", 7) == "txn_1#v7"


def test_fraud_assessment_is_pure_and_explained() -> None:
    rules = fraud.FraudRules.from_mapping({"blocked_countries": ["ru"], "velocity_max": 2})
    calls: list[tuple[int, int]] = []

    def recent(since: int, limit: int) -> int:
        calls.append((since, limit))
        return 2

    txn: dict[str, Any] = {"currency": "USD", "amount_minor": 1_000_001, "country": "RU", "merchant_id": "m"}
    result = fraud.assess(txn, rules, recent, now_ms=3_600_000)
    assert result.reasons == ["amount_over_threshold", "blocked_country", "velocity_exceeded"]
    assert result.score == 100 and result.decision == "REJECT"
    assert calls == [(0, 2)]
    assert fraud.assess(
        {**txn, "amount_minor": 1_000_000, "country": None}, rules, lambda _s, _n: 0, 0
    ).as_dict() == {
        "score": 20,
        "decision": "APPROVE",
        "reasons": ["amount_near_threshold"],
    }
    no_velocity = fraud.FraudRules.from_mapping({"velocity_max": 0})
    assert (
        fraud.assess({"currency": "USD", "amount_minor": 1}, no_velocity, lambda _s, _n: 99, 0).reasons == []
    )


def test_schema_file_is_draft_04_and_matches_the_domain() -> None:
    schema = schema_document()
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["merchant_id", "customer_id", "amount", "currency", "payment_method"]
    # draft-04 has no propertyNames / const / if-then: API Gateway would reject a newer schema.
    text = json.dumps(schema)
    for keyword in ("propertyNames", '"const"', '"if"', "exclusiveMinimum", "$defs"):
        assert keyword not in text


def test_parse_event_tolerates_partial_events() -> None:
    request = parse_event(None, "ctx-id")
    assert request.request_id == "ctx-id"
    assert request.headers == {} and request.api_key_id is None
    request = parse_event({"headers": {"X-A": "1", "Empty": None}, "body": {"already": "parsed"}})
    assert request.header("x-a") == "1" and request.header("empty") is None
    assert json.loads(request.body_bytes()) == {"already": "parsed"}
    assert len(request.request_id) == 32  # generated when neither gateway nor context gives one


def test_content_type_and_size_checks() -> None:
    ok = parse_event({"headers": {"content-type": "application/merge-patch+json"}, "body": "{}"})
    ok.require_json()
    with pytest.raises(UnsupportedMediaType):
        parse_event({"headers": {"Content-Type": "application/xml"}}).require_json()
    with pytest.raises(PayloadTooLarge):
        parse_event({"body": "x" * (64 * 1024 + 1)}).body_bytes()
    with pytest.raises(PayloadTooLarge):
        parse_event({"body": "é" * (40 * 1024)}).body_bytes()
    with pytest.raises(InvalidRequest):
        parse_event({"body": "\ud800"}).body_bytes()


def test_cors_headers() -> None:
    assert cors_headers("https://b", ["https://a", "https://b"])["Access-Control-Allow-Origin"] == "https://b"
    assert cors_headers(None, ["*"])["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in cors_headers(None, ["*"])
    assert cors_headers("https://x", [])["Access-Control-Allow-Origin"] == "null"


def test_dynamo_encoding_is_exact_and_round_trips() -> None:
    from decimal import Decimal

    from payments import dynamo

    item = {
        "s": "x",
        "i": 10050,
        "d": Decimal("1.25"),
        "b": True,
        "n": None,
        "m": {"a": [1, "two", {"three": Decimal("3.0")}]},
        "ss": {"a", "b"},
    }
    encoded = dynamo.to_attributes(item)
    assert "n" not in encoded
    assert encoded["i"] == {"N": "10050"}
    assert dynamo.from_attributes(encoded) == {
        **{k: v for k, v in item.items() if k != "n"},
        "m": {"a": [1, "two", {"three": 3}]},
    }
    assert dynamo.deserialize({"NS": ["1", "1.5"]}) == {1, Decimal("1.5")}
    assert dynamo.deserialize({"NULL": True}) is None
    assert dynamo.deserialize({"B": b"x"}) == b"x"
    with pytest.raises(TypeError):
        dynamo.serialize(1.5)
    with pytest.raises(TypeError):
        dynamo.serialize(Decimal("NaN"))
    with pytest.raises(TypeError):
        dynamo.serialize(object())
    with pytest.raises(TypeError):
        dynamo.deserialize({"XX": 1})


def test_one_attribute_of_a_raw_item_is_read_by_its_type() -> None:
    from payments import dynamo

    raw = {"status": {"S": "PENDING"}, "version": {"N": "3"}, "pending": {"M": {}}, "odd": {"N": "1.5"}}
    assert dynamo.value_of(raw, "status", "S") == "PENDING"
    assert dynamo.value_of(raw, "version", "N") == "3"  # as DynamoDB sent it
    assert dynamo.value_of(raw, "pending", "M") == {}
    assert dynamo.value_of(raw, "status", "N") is None  # another type
    assert dynamo.value_of(raw, "missing", "S", "?") == "?"
    assert [dynamo.scalar(raw, name) for name in ("status", "version", "odd", "pending", "missing")] == [
        "PENDING",
        "3",
        "1.5",
        None,
        None,
    ]


def test_audit_entries_are_ordered_by_version_not_by_the_writers_clock() -> None:
    # The sweeper's clock runs 5 minutes ahead of the retry consumer's: the later transition has
    # the earlier timestamp.
    fast = audit.audit_item("t", "SETTLING", "FAILED", 1_000_300_000, "sweeper", 90, version=4)
    slow = audit.audit_item("t", "FAILED", "SETTLING", 1_000_100_000, "retry", 90, version=5)
    same_ms = audit.audit_item("t", "SETTLING", "FAILED", 1_000_100_000, "retry", 90, version=6)
    assert [e["version"] for e in audit.ordered([same_ms, slow, fast])] == [4, 5, 6]
    assert len({fast["event_id"], slow["event_id"], same_ms["event_id"]}) == 3
    assert sorted([same_ms["event_id"], slow["event_id"], fast["event_id"]]) == [
        fast["event_id"],
        slow["event_id"],
        same_ms["event_id"],
    ]
