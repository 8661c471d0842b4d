"""The failed-transactions consumer: resume, ack, and partial batch failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from payments.handlers import notification, retry, validator

from devkit.emulator.processor import ProcessorServer
from devkit.terraform import REPO_ROOT
from tests.unit.awsenv import FRAUD_RULES, AwsEnv, payment
from tests.unit.flows import CTX, create, run_workflow

# Nothing listens there: the POST is refused before anything is sent.
UNREACHABLE = "https://127.0.0.1:9/v1/charges"


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


def test_retry_settles_a_failed_transaction_once_the_processor_is_back(
    aws: AwsEnv, processor_sim: ProcessorServer
) -> None:
    aws.set_processor(UNREACHABLE)
    txn = create()["transaction_id"]
    run_workflow(txn)
    message = failed_message(aws)
    aws.notifications("failed")
    aws.set_processor(processor_sim.endpoint)

    result = retry.handler(sqs_event(message), CTX)

    assert result == {"batchItemFailures": []}
    [item] = aws.transactions()
    assert item["status"] == "COMPLETED"
    assert item["attempts"] == 2
    to_states = [e["to_status"] for e in aws.audit(txn)]
    assert to_states == ["PENDING", "VALIDATING", "SETTLING", "FAILED", "SETTLING", "COMPLETED"]
    dedup = [m["Attributes"]["MessageDeduplicationId"] for m in aws.audit_stream()]
    # Every transition has its own id: the second attempt's SETTLING is not swallowed.
    assert dedup == [f"{txn}#v{v}" for v in range(1, 7)]
    assert len(processor_sim.ledger.charges_for(txn)) == 1
    [event] = aws.notifications("events")
    assert json.loads(event["Message"])["status"] == "COMPLETED"


def test_retry_that_fails_again_reports_the_message_and_leaves_it_failed(aws: AwsEnv) -> None:
    aws.set_processor(UNREACHABLE)
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


def test_a_parked_payment_emits_the_metric_its_alarm_watches(
    aws: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """The budget's last attempt failed after a charge request left: the retry consumer parks the
    payment and writes PaymentParked in the functions' namespace with the service dimension, which
    the payment-parked alarm watches (namespace, metric, {service = the retry function's})."""
    aws.set_processor(UNREACHABLE)
    txn = create()["transaction_id"]
    run_workflow(txn)
    message = failed_message(aws)
    [item] = aws.transactions()
    assert item.get("charge_sent_at") is not None  # the refused POST was marked sent first
    aws.ddb.update_item(
        TableName=aws.n["TRANSACTIONS_TABLE"],
        Key={"transaction_id": {"S": txn}, "timestamp": {"N": str(item["timestamp"])}},
        UpdateExpression="SET attempts = :n",
        ExpressionAttributeValues={":n": {"N": "50"}},  # the default budget, spent
    )
    capsys.readouterr()

    assert retry.handler(sqs_event(message), CTX) == {"batchItemFailures": []}

    [item] = aws.transactions()
    assert item["status"] == "FAILED" and item["parked"]["reason"] == "outcome_unresolved"
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    parked = [b for b in blobs if "PaymentParked" in b]
    assert len(parked) == 1, blobs
    [directive] = parked[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == os.environ["POWERTOOLS_METRICS_NAMESPACE"] == "PaymentPlatform"
    assert "PaymentParked" in [m["Name"] for m in directive["Metrics"]]
    assert aws.notifications("failed") == []  # parked is not an outcome


def test_the_functions_metrics_carry_the_service_dimension_from_the_environment() -> None:
    """In a Lambda process the environment exists before the handler module is imported: Powertools
    then adds ``service`` = POWERTOOLS_SERVICE_NAME as the metrics' one dimension (what the
    payment-parked alarm names). Run as Lambda would: a fresh interpreter with the function's env."""
    code = (
        "from payments.handlers._runtime import count, metrics\n"
        "@metrics.log_metrics\n"
        "def handler(event, context):\n"
        "    count('PaymentParked')\n"
        "handler({}, None)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT / "lambda"),
        "POWERTOOLS_SERVICE_NAME": "payment-retry",
        "POWERTOOLS_METRICS_NAMESPACE": "PaymentPlatform",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, a constant script
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    [blob] = [json.loads(line) for line in done.stdout.splitlines() if '"_aws"' in line]
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "PaymentPlatform"
    assert directive["Dimensions"] == [["service"]] and blob["service"] == "payment-retry"
    assert blob["PaymentParked"] in (1, 1.0, [1.0])


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
    aws: AwsEnv, processor_sim: ProcessorServer
) -> None:
    aws.set_processor(processor_sim.endpoint)
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
    assert len(processor_sim.ledger.charges_for(txn)) == 1  # one charge, across both attempts
    # The recorded approval was used: the second attempt did not even ask the processor.
    assert [r["method"] for r in processor_sim.ledger.requests] == ["POST"]


def test_safety_net_message_without_timestamp_fails_the_stranded_attempt_then_completes(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]
    validator.handler({"transaction_id": txn}, CTX)  # the execution died here (TIMED_OUT)
    body = {
        "transaction_id": txn,
        "source": "workflow-safety-net",
        "execution_status": "TIMED_OUT",
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:payment-workflow-test:{txn}",
        "failed_at": "2026-11-29T15:00:00Z",
    }

    first = retry.handler(sqs_event(body), CTX)
    again = retry.handler(sqs_event(body), CTX)  # at-least-once delivery

    assert first == again == {"batchItemFailures": []}
    [item] = aws.transactions()
    assert item["status"] == "COMPLETED"
    assert item["failure"]["error"] == "States.TIMED_OUT"
    assert [e["to_status"] for e in aws.audit(txn)] == [
        "PENDING",
        "VALIDATING",
        "FAILED",
        "SETTLING",
        "COMPLETED",
    ]


def test_sweeper_handler_reports_what_it_did(aws: AwsEnv) -> None:
    from payments.handlers import sweeper

    create()  # PENDING, but younger than the workflow budget: left alone

    result = sweeper.handler({}, CTX)

    assert result["failed"] == [] and result["errors"] == 0 and result["complete"] is True
    assert result["scanned_partitions"] == 3 * 16  # today and two days back, every shard
    assert aws.transactions()[0]["status"] == "PENDING"
