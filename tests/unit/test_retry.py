"""The failed-transactions consumer: resume, ack, and partial batch failures."""

from __future__ import annotations

import json
from typing import Any

from handlers import notification, retry, validator

from tests.unit.awsenv import FRAUD_RULES, AwsEnv, payment
from tests.unit.flows import CTX, create, run_workflow


def sqs_event(*bodies: Any) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"rh-{i}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
            for i, body in enumerate(bodies)
        ]
    }


def failed_message(aws: AwsEnv) -> dict[str, Any]:
    [message] = aws.drain(aws.n["FAILED_QUEUE_URL"])
    body: dict[str, Any] = json.loads(message["Body"])
    return body


def test_retry_settles_a_failed_transaction_once_the_processor_is_back(aws: AwsEnv) -> None:
    aws.set_processor("http://127.0.0.1:9/")
    txn = create()["transaction_id"]
    run_workflow(txn)
    message = failed_message(aws)
    aws.notifications("failed")
    aws.set_processor("sim://approve")

    result = retry.handler(sqs_event(message), CTX)

    assert result == {"batchItemFailures": []}
    [item] = aws.transactions()
    assert item["status"] == "COMPLETED"
    assert item["attempts"] == 2
    to_states = [e["to_status"] for e in aws.audit(txn)]
    assert to_states == ["PENDING", "VALIDATING", "SETTLING", "FAILED", "SETTLING", "COMPLETED"]
    dedup = [m["Attributes"]["MessageDeduplicationId"] for m in aws.audit_stream()]
    # The second attempt's transitions are not swallowed by FIFO de-duplication.
    assert dedup[-2:] == [f"{txn}#SETTLING#2", f"{txn}#COMPLETED#2"]
    [event] = aws.notifications("events")
    assert json.loads(event["Message"])["status"] == "COMPLETED"


def test_retry_that_fails_again_reports_the_message_and_leaves_it_failed(aws: AwsEnv) -> None:
    aws.set_processor("http://127.0.0.1:9/")
    txn = create()["transaction_id"]
    run_workflow(txn)
    message = failed_message(aws)

    result = retry.handler(sqs_event(message), CTX)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    [item] = aws.transactions()
    assert item["status"] == "FAILED"
    assert item["attempts"] == 2
    # The consumer does not re-queue: SQS retries this message, then moves it to the DLQ.
    assert aws.queue_depth(aws.n["FAILED_QUEUE_URL"]) == 0


def test_retry_of_a_transaction_failed_before_validation_runs_the_checks(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    notification.handler(
        {"action": "failure", "transaction_id": txn, "error": {"Error": "Lambda.Unknown"}}, CTX
    )
    message = failed_message(aws)

    result = retry.handler(sqs_event(message), CTX)

    assert result == {"batchItemFailures": []}
    [item] = aws.transactions()
    assert item["status"] == "COMPLETED"
    assert item["validation"] == {"valid": True, "reasons": []}
    assert item["fraud"]["decision"] == "APPROVE"


def test_retry_rejects_when_the_rerun_checks_refuse(aws: AwsEnv) -> None:
    txn = create(payment(amount="50000"))["transaction_id"]
    notification.handler(
        {"action": "failure", "transaction_id": txn, "error": {"Error": "Lambda.Unknown"}}, CTX
    )
    message = failed_message(aws)

    result = retry.handler(sqs_event(message), CTX)

    assert result == {"batchItemFailures": []}
    [item] = aws.transactions()
    assert item["status"] == "REJECTED"
    assert item["rejection"] == {"source": "fraud", "reasons": ["amount_over_threshold"]}
    assert [e["to_status"] for e in aws.audit(txn)][-2:] == ["FAILED", "REJECTED"]


def test_retry_resumes_pending_and_validating_transactions(aws: AwsEnv) -> None:
    pending = create(key="a")["transaction_id"]
    validating = create(key="b")["transaction_id"]
    validator.handler({"transaction_id": validating}, CTX)

    result = retry.handler(sqs_event({"transaction_id": pending}, {"transaction_id": validating}), CTX)

    assert result == {"batchItemFailures": []}
    assert {i["status"] for i in aws.transactions()} == {"COMPLETED"}


def test_retry_acks_finished_and_unknown_transactions(aws: AwsEnv) -> None:
    done = create()["transaction_id"]
    run_workflow(done)

    result = retry.handler(
        sqs_event({"transaction_id": done}, {"transaction_id": "txn_01JD0000000000000000000000"}), CTX
    )

    assert result == {"batchItemFailures": []}


def test_retry_reports_only_the_failed_records_of_a_batch(aws: AwsEnv) -> None:
    aws.set_fraud_rules(FRAUD_RULES)
    good = create(key="good")["transaction_id"]

    result = retry.handler(sqs_event("not json", {"transaction_id": good}, {"no": "id"}, [1, 2]), CTX)

    assert result == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]
    }
    assert aws.transactions()[0]["status"] == "COMPLETED"


def test_retry_with_empty_or_odd_event(aws: AwsEnv) -> None:
    assert retry.handler({}, CTX) == {"batchItemFailures": []}
    assert retry.handler(None, CTX) == {"batchItemFailures": []}


def test_retry_after_a_charge_whose_archive_failed_does_not_charge_again(
    aws: AwsEnv, monkeypatch: Any
) -> None:
    from payments import settlement

    charges: list[str] = []
    real_charge = settlement.charge

    def counting_charge(processor: Any, item: Any) -> Any:
        charges.append(item["transaction_id"])
        return real_charge(processor, item)

    monkeypatch.setattr(settlement, "charge", counting_charge)
    aws.s3.delete_bucket_encryption(Bucket=aws.n["ARCHIVE_BUCKET"])
    txn = create()["transaction_id"]
    state = run_workflow(txn)
    assert state["error"]["Error"] == "ArchiveNotEncrypted"
    [failed] = aws.transactions()
    assert failed["status"] == "FAILED"
    assert failed["processor_outcome"] == "approved"
    aws.s3.put_bucket_encryption(
        Bucket=aws.n["ARCHIVE_BUCKET"],
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "alias/x",
                    }
                }
            ]
        },
    )

    result = retry.handler(sqs_event(failed_message(aws)), CTX)

    assert result == {"batchItemFailures": []}
    [item] = aws.transactions()
    assert item["status"] == "COMPLETED"
    assert item["processor_reference"] == failed["processor_reference"]
    assert charges == [txn]  # one charge, across both attempts
