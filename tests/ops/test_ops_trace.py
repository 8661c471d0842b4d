"""``ops trace``: one transaction's story on moto (in-process): every section, redaction, exit codes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from click.testing import Result
from ops_testkit import (
    BUCKET,
    REGION,
    SUFFIX,
    TABLE,
    Platform,
    add_outputs,
    create_workflow,
    day_shard,
)
from payments.ids import new_transaction_id
from payments.pan import luhn_valid

from tests.support import tables

AUDIT_TABLE = f"payment-audit-{SUFFIX}"
PAN = "4111 1111 1111 1111"
LOG_GROUPS = {
    "intake": f"/aws/lambda/payment-intake-{SUFFIX}",
    "settlement": f"/aws/lambda/payment-settlement-{SUFFIX}",
    "workflow": f"/aws/vendedlogs/states/payment-workflow-{SUFFIX}",
}


@pytest.fixture
def traced(platform: Platform) -> dict[str, Any]:
    """The platform plus an audit table, a state machine and their outputs."""
    ddb = platform.dynamodb
    tables.create_table(ddb, tables.AUDIT, AUDIT_TABLE)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = create_workflow(sfn)
    add_outputs(platform, audit_table_name=AUDIT_TABLE, state_machine_arn=machine, log_group_names=LOG_GROUPS)
    return {"sfn": sfn, "machine": machine}


def _transaction(
    platform: Platform, status: str, *, ago_s: int = 600, extra: dict[str, Any] | None = None
) -> str:
    ts = int(time.time() * 1000) - ago_s * 1000
    txn = new_transaction_id(ts)
    item: dict[str, Any] = {
        "transaction_id": {"S": txn},
        "timestamp": {"N": str(ts)},
        "day_shard": {"S": day_shard(txn, ts)},
        "status": {"S": status},
        "merchant_id": {"S": "m_1"},
        "customer_id": {"S": "c_1"},
        "amount_minor": {"N": "1250"},
        "currency": {"S": "EUR"},
        "version": {"N": "3"},
        "stream_outbox": {"L": []},
    }
    item.update(extra or {})
    platform.dynamodb.put_item(TableName=TABLE, Item=item)
    for offset, (before, after) in enumerate(
        (("NONE", "PENDING"), ("PENDING", "VALIDATING"), ("VALIDATING", status))
    ):
        at = ts + offset * 1000
        platform.dynamodb.put_item(
            TableName=AUDIT_TABLE,
            Item={
                "transaction_id": {"S": txn},
                "event_id": {"S": f"{at:013d}#{after}"},
                "from_status": {"S": before},
                "to_status": {"S": after},
                "at": {
                    "S": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at / 1000)) + f".{at % 1000:03d}Z"
                },
                "actor": {"S": "validator" if offset else "intake"},
                "detail": {"M": {}},
                "expires_at": {"N": str(at // 1000 + 90 * 86400)},
            },
        )
    return txn


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_completed_transaction_json_has_every_section(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "SUCCESS")
    txn = _transaction(platform, "COMPLETED")
    traced["sfn"].start_execution(stateMachineArn=traced["machine"], name=txn, input="{}")

    data = _json(run("trace", txn, "--json"))

    assert set(data) == {
        "transaction_id",
        "transaction",
        "audit",
        "executions",
        "queues",
        "archive",
        "links",
        "timeline",
        "skipped",
    }
    assert data["transaction_id"] == txn
    assert data["transaction"]["status"] == "COMPLETED"
    assert data["transaction"]["amount_minor"] == 1250
    assert "stream_outbox" not in data["transaction"]
    assert [(a["from_status"], a["to_status"]) for a in data["audit"]] == [
        ("NONE", "PENDING"),
        ("PENDING", "VALIDATING"),
        ("VALIDATING", "COMPLETED"),
    ]
    assert all(a["at"] for a in data["audit"])
    (execution,) = data["executions"]
    assert execution["name"] == txn
    assert execution["arn"].endswith(f":execution:payment-workflow-{SUFFIX}:{txn}")
    assert execution["status"] != "FAILED" and execution["error"] is None
    assert {q["queue"]: q["present"] for q in data["queues"]} == {"failed": False, "dlq": False}
    assert data["archive"] is None
    assert data["skipped"] == {}
    assert "executions/details/" in data["links"]["execution"]
    insights = data["links"]["logs_insights"]
    assert "logs-insights" in insights and txn in insights
    # Only the functions' log groups, encoded the way the console expects ("/" -> "*2F").
    assert "*2Faws*2Flambda*2Fpayment-intake-test" in insights
    assert "vendedlogs" not in insights
    # The timeline names every audit transition, in version order (one clock here: time order too).
    stamps = [e["at"] for e in data["timeline"]]
    assert stamps == sorted(stamps)
    assert sum(e["source"] == "audit" for e in data["timeline"]) == 3


def test_failed_transaction_shows_failed_state_queue_message_and_redacts_pans(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    txn = _transaction(platform, "FAILED", extra={"failure": {"M": {"cause": {"S": f"card {PAN} declined"}}}})
    traced["sfn"].start_execution(stateMachineArn=traced["machine"], name=txn, input="{}")
    # Other traffic in the queue first: the trace must look past it and leave it all in place.
    for n in range(12):
        platform.sqs.send_message(
            QueueUrl=platform.failed_url, MessageBody=json.dumps({"transaction_id": f"x{n}"})
        )
    body = {"transaction_id": txn, "error": "Processor.Timeout", "cause": f"pan {PAN}", "failed_at": "now"}
    platform.sqs.send_message(QueueUrl=platform.failed_url, MessageBody=json.dumps(body))

    result = run("trace", txn, "--json")
    data = _json(result)

    assert PAN not in result.stdout and "4111111111111111" not in result.stdout
    assert "[REDACTED-PAN]" in data["transaction"]["failure"]["cause"]
    (execution,) = data["executions"]
    assert execution["status"] == "FAILED"
    assert execution["error"] == "AnError"
    assert execution["failed_state"]  # the state entered last before the failure
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["failed"]["present"] is True and queues["dlq"]["present"] is False
    (message,) = queues["failed"]["messages"]
    assert message["sent_at"] and message["age_s"] >= 0
    assert message["body"]["cause"] == "pan [REDACTED-PAN]"
    # Peeked, not consumed: all 13 messages are visible again.
    assert platform.queue_counts(platform.failed_url) == (13, 0)
    assert any(e["source"] == "failed" for e in data["timeline"])
    assert any("FAILED" in e["event"] and e["source"] == "workflow" for e in data["timeline"])


def test_rich_output_is_a_timeline_with_unbroken_links(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    txn = _transaction(platform, "REJECTED")
    traced["sfn"].start_execution(stateMachineArn=traced["machine"], name=txn, input="{}")

    result = run("trace", txn, env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.stderr
    assert txn in result.stdout and "Timeline" in result.stdout
    assert "VALIDATING → REJECTED" in result.stdout
    assert "amount=12.50 EUR" in result.stdout  # major units for people; --json keeps amount_minor
    assert "workflow failed in" in result.stdout
    link_lines = [
        line for line in result.stdout.splitlines() if line.startswith(("execution:", "logs_insights:"))
    ]
    assert len(link_lines) == 2 and all(txn in line for line in link_lines)


def test_archived_transaction_is_found_through_the_cleanup_manifests(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any]
) -> None:
    ts = int(time.time() * 1000) - 120 * 86_400_000
    txn = new_transaction_id(ts)
    cutoff = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 90 * 86400))
    obj = f"cleanup/{cutoff}/run1/s000-000000.jsonl"
    platform.s3.put_object(Bucket=BUCKET, Key=obj, Body=b"{}\n")
    manifest = {"object": obj, "count": 1, "keys": [{"key": f"{txn}|{ts}", "version": "3"}]}
    platform.s3.put_object(
        Bucket=BUCKET, Key=obj.replace(".jsonl", ".manifest.json"), Body=json.dumps(manifest).encode()
    )

    data = _json(run("trace", txn, "--json", "--peek-max", "0"))

    assert data["transaction"] is None and data["audit"] == [] and data["executions"] == []
    assert data["archive"]["object"] == obj and data["archive"]["bucket"] == BUCKET
    assert data["archive"]["kind"] == "cleanup"
    assert data["queues"] == [] and "queues" in data["skipped"]


def test_settled_transaction_shows_the_object_settlement_archived(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any]
) -> None:
    from payments.layout import settled_key

    txn = _transaction(platform, "COMPLETED", ago_s=3 * 86_400)
    (item,) = [i for i in platform.all_items() if i["transaction_id"]["S"] == txn]
    key = settled_key(txn, int(item["timestamp"]["N"]))
    assert key.startswith("transactions/") and key.endswith(f"/{txn}.json")
    platform.s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")

    data = _json(run("trace", txn, "--json", "--peek-max", "0"))

    assert data["archive"]["kind"] == "settlement"
    assert data["archive"]["object"] == key and data["archive"]["archived_at"]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_unknown_id_exits_1_with_nothing_on_stdout(
    run: Callable[..., Result], traced: dict[str, Any], json_flag: list[str]
) -> None:
    result = run("trace", new_transaction_id(), *json_flag)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "not found" in result.stderr


@pytest.mark.parametrize(
    "bad", ["txn_123", "TXN_01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "x"]
)
def test_malformed_id_exits_1_without_calling_aws(
    run: Callable[..., Result], platform: Platform, bad: str
) -> None:
    result = run("trace", bad)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "not a transaction id" in result.stderr


def test_empty_platform_without_audit_or_workflow_outputs_reports_unknown_id(
    run: Callable[..., Result], platform: Platform
) -> None:
    result = run("trace", new_transaction_id(), "--json")
    assert result.exit_code == 1 and result.stdout == ""


def test_sections_without_names_are_skipped_not_hidden(
    run: Callable[..., Result], platform: Platform
) -> None:
    txn = new_transaction_id()
    ts = int(time.time() * 1000)
    platform.dynamodb.put_item(
        TableName=TABLE,
        Item={"transaction_id": {"S": txn}, "timestamp": {"N": str(ts)}, "status": {"S": "PENDING"}},
    )
    # The fixture's outputs carry the suffix, so the audit table name is derived; it does not exist.
    outputs = json.loads(platform.outputs_file.read_text())
    outputs["audit_table_name"] = {"value": "", "type": "string", "sensitive": False}
    outputs.pop("environment_suffix")
    platform.outputs_file.write_text(json.dumps(outputs))

    data = _json(run("trace", txn, "--json"))

    assert data["transaction"]["status"] == "PENDING"
    assert set(data["skipped"]) == {"audit", "executions"}
    assert "logs_insights" not in data["links"]


def test_a_transaction_known_only_to_the_dlq_is_traced_and_left_in_place(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any]
) -> None:
    txn = new_transaction_id()
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=json.dumps({"transaction_id": txn}))

    data = _json(run("trace", txn, "--json"))

    assert data["transaction"] is None
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["dlq"]["present"] is True and queues["failed"]["present"] is False
    assert queues["dlq"]["messages"][0]["receive_count"] == 1
    assert platform.queue_counts(platform.dlq_url) == (1, 0)


def test_generated_numbers_that_look_like_card_numbers_are_not_masked(
    run: Callable[..., Result], platform: Platform, traced: dict[str, Any]
) -> None:
    # One epoch-ms value in ten passes the Luhn check; the platform's own fields must survive.
    ts = int(time.time() * 1000) - 600_000
    while not luhn_valid(str(ts)):
        ts += 1
    txn = new_transaction_id(ts)
    platform.dynamodb.put_item(
        TableName=TABLE,
        Item={"transaction_id": {"S": txn}, "timestamp": {"N": str(ts)}, "status": {"S": "PENDING"}},
    )
    platform.dynamodb.put_item(
        TableName=AUDIT_TABLE,
        Item={
            "transaction_id": {"S": txn},
            "event_id": {"S": f"{ts:013d}#PENDING"},
            "from_status": {"S": "NONE"},
            "to_status": {"S": "PENDING"},
            "detail": {"M": {"note": {"S": f"card {PAN}"}}},
        },
    )
    body = {"transaction_id": txn, "timestamp": ts, "cause": PAN}
    platform.sqs.send_message(QueueUrl=platform.failed_url, MessageBody=json.dumps(body))

    data = _json(run("trace", txn, "--json"))

    assert data["transaction"]["timestamp"] == ts
    assert data["audit"][0]["event_id"] == f"{ts:013d}#PENDING"
    assert data["audit"][0]["detail"]["note"] == "card [REDACTED-PAN]"
    (message,) = next(q for q in data["queues"] if q["queue"] == "failed")["messages"]
    assert message["body"] == {"transaction_id": txn, "timestamp": ts, "cause": "[REDACTED-PAN]"}


@pytest.mark.parametrize(
    ("txn", "shown"),
    [
        ({"amount_minor": 4200, "currency": "USD"}, "42.00 USD"),
        ({"amount_minor": 5000, "currency": "JPY"}, "5,000 JPY"),
        ({"amount_minor": 1234567, "currency": "KWD"}, "1,234.567 KWD"),
        ({"amount_minor": "n/a", "currency": "EUR"}, "n/a EUR"),
        ({}, "?"),
    ],
)
def test_trace_shows_amounts_in_the_currency_major_units(txn: dict[str, Any], shown: str) -> None:
    from ops.cli.trace import _amount

    assert _amount(txn) == shown


def test_timeline_timestamps_share_one_format() -> None:
    import datetime as dt

    from payments.clock import iso_from_ms

    from ops.core.trace import iso

    at = dt.datetime(2026, 11, 29, 2, 51, 7, 95000, tzinfo=dt.UTC)
    assert iso(at) == "2026-11-29T02:51:07.095Z"
    assert iso_from_ms(int(at.timestamp() * 1000)) == iso(at)


def test_the_timeline_keeps_version_order_under_skew_and_puts_waiting_messages_last() -> None:
    """The sweeper's host runs five minutes fast: its transition (v4) is stamped after the two that
    follow it. The story is told in version order with the times shown; the workflow's events fall
    between the transitions by time; a message dead-lettered after its retries, stamped with its
    first send, comes last: it is where the payment stands now."""
    from ops.core.trace import Trace

    trace = Trace(
        "txn_x",
        audit=[
            {
                "version": 3,
                "at": "2026-12-01T10:00:00.000Z",
                "from_status": "PENDING",
                "to_status": "SETTLING",
                "actor": "settlement",
            },
            {
                "version": 4,
                "at": "2026-12-01T10:06:00.000Z",
                "from_status": "SETTLING",
                "to_status": "FAILED",
                "actor": "sweeper",
            },
            {
                "version": 5,
                "at": "2026-12-01T10:01:30.000Z",
                "from_status": "FAILED",
                "to_status": "SETTLING",
                "actor": "retry",
            },
            {
                "version": 6,
                "at": "2026-12-01T10:01:40.000Z",
                "from_status": "SETTLING",
                "to_status": "COMPLETED",
                "actor": "retry",
            },
        ],
        executions=[
            {
                "name": "exec-1",
                "start": "2026-12-01T09:59:59.000Z",
                "stop": "2026-12-01T10:00:30.000Z",
                "status": "FAILED",
            }
        ],
        queues=[
            {"queue": "dlq", "name": "payment-dlq", "messages": [{"sent_at": "2026-12-01T10:00:31.000Z"}]}
        ],
    )

    events = [e["event"] for e in trace.timeline()]

    assert events == [
        "exec-1 started",
        "PENDING → SETTLING by settlement",
        "exec-1 FAILED",
        "SETTLING → FAILED by sweeper",
        "FAILED → SETTLING by retry",
        "SETTLING → COMPLETED by retry",
        "message in payment-dlq",
    ]
    shown = {e["event"]: e["at"] for e in trace.timeline()}
    assert shown["SETTLING → FAILED by sweeper"] == "2026-12-01T10:06:00.000Z"  # shown as written


# -- issue 22, item 7: a card number typed by mistake is never echoed -------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ("trace", "4111111111111111"),
        ("-v", "trace", "4111-1111-1111-1111", "--json"),
        ("trace", "txn_01ARZ3NDEKTSV4RRFFQ69G5FAV", "4111 1111 1111 1111"),
        ("trace", "--peek-max", "4111111111111111", "txn_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ],
)
def test_a_card_number_given_to_trace_is_masked_on_every_stream(
    run: Callable[..., Result], platform: Platform, argv: tuple[str, ...]
) -> None:
    result = run(*argv)
    assert result.exit_code in (1, 2)
    for stream in (result.stdout, result.stderr):
        digits = "".join(ch for ch in stream if ch.isdigit())
        assert "4111111111111111" not in digits, stream
    assert "[REDACTED-PAN]" in result.stderr
