"""The workflow task handlers: validator, fraud_check, settlement, notification."""

from __future__ import annotations

import json
from typing import Any

import pytest
from payments.config import get_settings
from payments.errors import DomainError, TransitionConflict
from payments.handlers import fraud_check, notification, settlement, validator
from payments.store.repository import Repository

from tests.unit.awsenv import FRAUD_RULES, AwsEnv, payment
from tests.unit.flows import CTX, create, run_workflow


def statuses(aws: AwsEnv, transaction_id: str) -> list[tuple[str, str]]:
    return [(e["from_status"], e["to_status"]) for e in aws.audit(transaction_id)]


def stream(aws: AwsEnv) -> list[tuple[str | None, str, str]]:
    out = []
    for m in aws.audit_stream():
        body = json.loads(m["Body"])
        out.append((body["from_status"], body["to_status"], m["Attributes"]["MessageDeduplicationId"]))
        assert m["Attributes"]["MessageGroupId"] == body["transaction_id"]
    return out


def attrs(envelope: dict[str, Any]) -> dict[str, str]:
    return {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}


def test_approved_payment_completes_archived_audited_and_announced(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]

    state = run_workflow(txn)

    assert state["path"] == "settle"
    assert state["checks"][0] == {"valid": True, "reasons": []}
    assert state["checks"][1] == {"decision": "APPROVE", "score": 0, "reasons": []}
    assert state["settlement"]["status"] == "COMPLETED"
    [item] = aws.transactions()
    assert item["status"] == "COMPLETED"
    assert item["fraud"]["decision"] == "APPROVE"
    assert item["processor_reference"].startswith("sim_")
    assert item["transitions"] == 4

    assert statuses(aws, txn) == [
        ("NONE", "PENDING"),
        ("PENDING", "VALIDATING"),
        ("VALIDATING", "SETTLING"),
        ("SETTLING", "COMPLETED"),
    ]
    assert stream(aws) == [
        (None, "PENDING", f"{txn}#v1"),
        ("PENDING", "VALIDATING", f"{txn}#v2"),
        ("VALIDATING", "SETTLING", f"{txn}#v3"),
        ("SETTLING", "COMPLETED", f"{txn}#v4"),
    ]
    assert "stream_outbox" not in item or item["stream_outbox"] == []
    assert "outbox" not in item

    year, month, day = item["created_at"][:10].split("-")
    key = f"transactions/{year}/{month}/{day}/{txn}.json"
    obj = aws.s3.get_object(Bucket=aws.n["ARCHIVE_BUCKET"], Key=key)
    assert obj["ServerSideEncryption"] == "aws:kms"
    archived = json.loads(obj["Body"].read())
    assert archived["status"] == "COMPLETED"
    assert archived["amount_minor"] == 10050 and archived["amount"] == "100.50"
    assert "payment_method_token" not in archived and "tok_" not in json.dumps(archived)

    [event] = aws.notifications("events")
    assert attrs(event) == {
        "event_type": "transaction.completed",
        "notification_id": f"{txn}#transaction.completed",
        "status": "COMPLETED",
        "currency": "USD",
        "merchant_id": "merch_123",
    }
    message = json.loads(event["Message"])
    assert message["transaction_id"] == txn and message["status"] == "COMPLETED"
    assert "tok_" not in event["Message"]
    assert aws.notifications("failed") == []


def test_declined_card_is_rejected_and_announced_on_failed_topic(aws: AwsEnv) -> None:
    txn = create(payment(payment_method={"type": "card", "token": "tok_decline_insufficient"}))[
        "transaction_id"
    ]

    state = run_workflow(txn)

    assert state["settlement"] == {
        "status": "REJECTED",
        "processor_reference": state["settlement"]["processor_reference"],
        "decline_code": "card_declined",
    }
    [item] = aws.transactions()
    assert item["status"] == "REJECTED"
    assert item["rejection"] == {"source": "processor", "reasons": ["card_declined"]}
    assert statuses(aws, txn)[-1] == ("SETTLING", "REJECTED")
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=aws.n["ARCHIVE_BUCKET"])
    [event] = aws.notifications("failed")
    assert attrs(event)["event_type"] == "transaction.rejected"
    assert aws.notifications("events") == []


@pytest.mark.parametrize(
    ("overrides", "reasons"),
    [
        ({"amount": "10000.01"}, ["amount_over_threshold"]),
        ({"country": "KP"}, ["blocked_country"]),
        ({"merchant_id": "merch_blocked"}, ["blocked_merchant"]),
    ],
)
def test_fraud_rules_reject_before_settlement(
    aws: AwsEnv, overrides: dict[str, Any], reasons: list[str]
) -> None:
    txn = create(payment(**overrides))["transaction_id"]

    state = run_workflow(txn)

    assert state["path"] == "reject"
    assert state["checks"][1]["decision"] == "REJECT"
    assert state["checks"][1]["reasons"] == reasons
    [item] = aws.transactions()
    assert item["status"] == "REJECTED"
    assert item["fraud"]["reasons"] == reasons and item["fraud"]["score"] >= 70
    assert item["rejection"] == {"source": "fraud", "reasons": reasons}
    assert statuses(aws, txn) == [("NONE", "PENDING"), ("PENDING", "VALIDATING"), ("VALIDATING", "REJECTED")]
    [event] = aws.notifications("failed")
    assert attrs(event)["event_type"] == "transaction.rejected"
    assert json.loads(event["Message"])["rejection"]["reasons"] == reasons


def test_amount_threshold_is_per_currency(aws: AwsEnv) -> None:
    aws.set_fraud_rules({**FRAUD_RULES, "amount_thresholds": {"default": "10000", "JPY": "2000000"}})
    txn = create(payment(amount=1_500_000, currency="JPY"))["transaction_id"]

    result = fraud_check.handler({"transaction_id": txn}, CTX)

    assert result["decision"] == "APPROVE"
    assert result["reasons"] == []


def test_amount_near_threshold_adds_risk_without_rejecting(aws: AwsEnv) -> None:
    txn = create(payment(amount="9000.00"))["transaction_id"]

    result = fraud_check.handler({"transaction_id": txn}, CTX)

    assert result == {"decision": "APPROVE", "score": 20, "reasons": ["amount_near_threshold"]}


def test_customer_velocity_counts_recent_payments_on_the_customer_index(aws: AwsEnv) -> None:
    aws.set_fraud_rules({**FRAUD_RULES, "velocity_max": 3})
    ids = [create(payment(), key=f"k-{i}")["transaction_id"] for i in range(4)]
    other = create(payment(customer_id="cust_other"), key="k-other")["transaction_id"]

    early = fraud_check.handler({"transaction_id": ids[2]}, CTX)
    late = fraud_check.handler({"transaction_id": ids[3]}, CTX)
    unrelated = fraud_check.handler({"transaction_id": other}, CTX)

    # Three *other* payments of the same customer within the window trip the rule.
    assert early["reasons"] == ["velocity_exceeded"]
    assert late["reasons"] == ["velocity_exceeded"]
    assert unrelated["reasons"] == []
    assert late["decision"] == "APPROVE" and late["score"] == 50


def test_velocity_with_large_amount_rejects(aws: AwsEnv) -> None:
    aws.set_fraud_rules({**FRAUD_RULES, "velocity_max": 1})
    create(payment(), key="k-0")
    txn = create(payment(amount="9500"), key="k-1")["transaction_id"]

    result = fraud_check.handler({"transaction_id": txn}, CTX)

    assert result["decision"] == "REJECT"
    assert sorted(result["reasons"]) == ["amount_near_threshold", "velocity_exceeded"]


def test_fraud_result_is_stored_once_and_reused_on_retry(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    first = fraud_check.handler({"transaction_id": txn}, CTX)
    aws.set_fraud_rules({**FRAUD_RULES, "reject_score": 0})

    again = fraud_check.handler({"transaction_id": txn}, CTX)

    assert again == first
    assert aws.transactions()[0]["fraud"]["decision"] == "APPROVE"


def test_malformed_fraud_rules_fall_back_to_defaults(aws: AwsEnv) -> None:
    aws.set_fraud_rules({"amount_thresholds": "oops", "velocity_max": "many", "reject_score": None})
    txn = create(payment(amount="20000"))["transaction_id"]

    result = fraud_check.handler({"transaction_id": txn}, CTX)

    assert result["decision"] == "REJECT"
    assert result["reasons"] == ["amount_over_threshold"]


def test_validator_rerun_is_idempotent(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    first = validator.handler({"transaction_id": txn}, CTX)

    again = validator.handler({"transaction_id": txn}, CTX)

    assert again == first == {"valid": True, "reasons": []}
    assert statuses(aws, txn) == [("NONE", "PENDING"), ("PENDING", "VALIDATING")]
    # The re-run re-sent the stream messages; SQS de-duplicated them.
    assert [s[1] for s in stream(aws)] == ["PENDING", "VALIDATING"]


def test_validator_flags_a_stored_record_that_is_no_longer_valid(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    [item] = aws.transactions()
    aws.ddb.update_item(
        TableName=aws.n["TRANSACTIONS_TABLE"],
        Key={"transaction_id": {"S": txn}, "timestamp": {"N": str(item["timestamp"])}},
        UpdateExpression="SET currency = :c, payment_method_token = :t",
        ExpressionAttributeValues={":c": {"S": "XXX"}, ":t": {"S": "4111111111111111"}},
    )

    state = run_workflow(txn)

    assert state["checks"][0] == {
        "valid": False,
        "reasons": ["unsupported_currency", "invalid_payment_method"],
    }
    assert state["path"] == "reject"
    [item] = aws.transactions()
    assert item["status"] == "REJECTED"
    assert item["rejection"]["source"] == "validation"


def test_settlement_runs_once_even_when_the_step_is_retried(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    run_workflow(txn)

    again = settlement.handler({"transaction_id": txn}, CTX)

    assert again["status"] == "COMPLETED"
    assert [a for a in statuses(aws, txn) if a[1] == "COMPLETED"] == [("SETTLING", "COMPLETED")]
    assert len(aws.s3.list_objects_v2(Bucket=aws.n["ARCHIVE_BUCKET"])["Contents"]) == 1


def test_settlement_resumes_a_timed_out_attempt_with_the_same_processor_key(aws: AwsEnv) -> None:
    from payments.handlers import _runtime

    txn = create()["transaction_id"]
    validator.handler({"transaction_id": txn}, CTX)
    fraud_check.handler({"transaction_id": txn}, CTX)
    services = _runtime.services()
    item = services.repo.require(txn)
    services.repo.transition(item, "SETTLING", "settlement")  # the first attempt died here

    result = settlement.handler({"transaction_id": txn}, CTX)

    assert result["status"] == "COMPLETED"
    [item] = aws.transactions()
    assert item["attempts"] == 1
    assert [a[1] for a in statuses(aws, txn)].count("SETTLING") == 1


def test_settlement_refuses_a_transaction_whose_checks_failed(aws: AwsEnv) -> None:
    txn = create(payment(country="RU"))["transaction_id"]
    validator.handler({"transaction_id": txn}, CTX)
    fraud_check.handler({"transaction_id": txn}, CTX)

    with pytest.raises(DomainError):
        settlement.handler({"transaction_id": txn}, CTX)

    assert aws.transactions()[0]["status"] == "VALIDATING"


def test_settlement_before_validation_is_refused(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]

    with pytest.raises(DomainError):
        settlement.handler({"transaction_id": txn}, CTX)


def test_unreachable_processor_fails_the_transaction_into_the_retry_queue(aws: AwsEnv) -> None:
    aws.set_processor("https://127.0.0.1:9/v1/charges")
    txn = create()["transaction_id"]

    state = run_workflow(txn)

    assert state["path"] == "failure"
    assert state["error"]["Error"] == "ProcessorUnavailable"
    assert state["failure"] == {"status": "FAILED", "recorded": True}
    [item] = aws.transactions()
    assert item["status"] == "FAILED"
    assert item["failure"]["error"] == "ProcessorUnavailable"
    assert item["failure"]["from_status"] == "SETTLING"
    assert statuses(aws, txn)[-1] == ("SETTLING", "FAILED")
    [message] = aws.drain(aws.n["FAILED_QUEUE_URL"])
    body = json.loads(message["Body"])
    assert set(body) == {"transaction_id", "timestamp", "error", "cause", "failed_at"}
    assert body["transaction_id"] == txn and body["timestamp"] == item["timestamp"]
    # The failed attempt is retried: not announced ("transaction.failed" is final only).
    assert aws.notifications("failed") == []


def test_failure_cause_from_step_functions_is_trimmed_and_masked(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    cause = json.dumps(
        {"errorType": "KeyError", "errorMessage": "card 4111111111111111 missing", "stackTrace": ["x" * 5000]}
    )

    notification.handler(
        {"action": "failure", "transaction_id": txn, "error": {"Error": "KeyError", "Cause": cause}}, CTX
    )

    [item] = aws.transactions()
    assert item["failure"]["cause"] == "KeyError: card [REDACTED-PAN] missing"
    assert item["failure"]["from_status"] == "PENDING"


def test_failure_after_completion_leaves_the_final_status(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    run_workflow(txn)
    aws.notifications("events")

    result = notification.handler(
        {"action": "failure", "transaction_id": txn, "error": {"Error": "States.Timeout"}}, CTX
    )

    assert result == {"status": "COMPLETED", "recorded": False}
    assert aws.transactions()[0]["status"] == "COMPLETED"
    assert aws.queue_depth(aws.n["FAILED_QUEUE_URL"]) == 0
    assert aws.notifications("failed") == []


def test_failure_recorded_twice_queues_once(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    event = {
        "action": "failure",
        "transaction_id": txn,
        "error": {"Error": "States.TaskFailed", "Cause": "boom"},
    }

    first = notification.handler(event, CTX)
    second = notification.handler(event, CTX)

    assert first["recorded"] is True and second["recorded"] is False
    assert aws.queue_depth(aws.n["FAILED_QUEUE_URL"]) == 1


def test_outcome_before_a_final_status_is_an_error(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]

    with pytest.raises(DomainError):
        notification.handler({"action": "outcome", "transaction_id": txn}, CTX)


def test_reject_of_a_transaction_whose_checks_passed_is_refused(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    validator.handler({"transaction_id": txn}, CTX)
    fraud_check.handler({"transaction_id": txn}, CTX)

    with pytest.raises(DomainError):
        notification.handler({"action": "reject", "transaction_id": txn}, CTX)


def test_reject_rerun_neither_transitions_nor_notifies_twice(aws: AwsEnv) -> None:
    txn = create(payment(country="CN"))["transaction_id"]
    run_workflow(txn)

    notification.handler({"action": "reject", "transaction_id": txn}, CTX)

    assert [a[1] for a in statuses(aws, txn)].count("REJECTED") == 1
    assert len(aws.notifications("failed")) == 1  # the outbox entry was acknowledged once


@pytest.mark.parametrize("event", [{}, {"transaction_id": "nope"}, {"transaction_id": 5}, "not a dict"])
def test_task_input_without_a_transaction_id_is_an_error(aws: AwsEnv, event: Any) -> None:
    with pytest.raises(DomainError):
        validator.handler(event, CTX)


def test_unknown_notification_action_is_an_error(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]

    with pytest.raises(DomainError):
        notification.handler({"action": "dance", "transaction_id": txn}, CTX)


def test_missing_transaction_is_an_error(aws: AwsEnv) -> None:
    with pytest.raises(DomainError):
        validator.handler({"transaction_id": "txn_01JD0000000000000000000000"}, CTX)


def test_task_input_nested_under_state_is_accepted(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]

    assert validator.handler({"state": {"transaction_id": txn}}, CTX)["valid"] is True


def test_backward_transition_is_refused(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    run_workflow(txn)
    repo = Repository(get_settings(), aws.ddb)
    item = repo.require(txn)

    with pytest.raises(ValueError, match="not an allowed transition"):
        repo.transition(item, "SETTLING", "test")
    stale = {**item, "status": "VALIDATING"}
    with pytest.raises(TransitionConflict):
        repo.transition(stale, "SETTLING", "test")
    assert repo.require(txn)["status"] == "COMPLETED"


def test_archive_without_kms_encryption_fails_the_settlement(aws: AwsEnv) -> None:
    from payments.settle import ArchiveNotEncrypted

    aws.s3.delete_bucket_encryption(Bucket=aws.n["ARCHIVE_BUCKET"])
    txn = create()["transaction_id"]
    validator.handler({"transaction_id": txn}, CTX)
    fraud_check.handler({"transaction_id": txn}, CTX)

    with pytest.raises(ArchiveNotEncrypted):
        settlement.handler({"transaction_id": txn}, CTX)

    # Not COMPLETED: the step fails, Step Functions retries, then records the failure.
    assert aws.transactions()[0]["status"] == "SETTLING"


def test_audit_stream_messages_name_the_actor_and_time_of_each_transition(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    run_workflow(txn)
    [item] = aws.transactions()

    bodies = [json.loads(m["Body"]) for m in aws.audit_stream()]

    assert [(b["to_status"], b["actor"]) for b in bodies] == [
        ("PENDING", "intake"),
        ("VALIDATING", "validator"),
        ("SETTLING", "settlement"),
        ("COMPLETED", "settlement"),
    ]
    assert bodies[0]["at"] == item["created_at"]
    assert bodies[-1]["at"] == item["updated_at"]
    audit_times = {e["to_status"]: e["at"] for e in aws.audit(txn)}
    assert audit_times["PENDING"] == item["created_at"]
