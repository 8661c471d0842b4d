"""One transaction's story from the platform's own records (``ops trace``).

Sources, each read-only: the transaction item, its audit entries, the workflow execution (named
after the transaction id) and its history, the failed queue and the DLQ (peeked, see
``peek_queue``), the cleanup archive manifests, and console links. Everything shown passes
through the application's PAN masking (``payments.pan.mask_pans``), as the logs do.

This module needs the application package ``payments`` (id format, PAN masking); the CLI imports
it only when ``ops trace`` runs.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from payments.clock import iso_from_datetime, iso_from_ms, ms_from_iso
from payments.dynamo import from_attributes
from payments.ids import is_transaction_id, timestamp_of
from payments.layout import ARCHIVE_PREFIX, MANIFEST_SUFFIX, settled_key
from payments.pan import mask_pans
from payments.queues import QueueNotFound, queue_url
from payments.redaction import RECORD_GENERATED_FIELDS, mask_document
from payments.states import UNSUCCESSFUL_EXECUTIONS
from payments.store.keys import row_id

from ops.core import OpsError

# Peek bounds: at most PEEK_ROUNDS receives of 10 messages per queue.
PEEK_ROUNDS = 5
PEEK_VISIBILITY_S = 5
MAX_HISTORY_EVENTS = 1_000
MAX_MANIFESTS = 500
LOGS_WINDOW_S = 7 * 86_400
FAILURE_EVENTS = (
    "ExecutionFailed",
    "ExecutionTimedOut",
    "ExecutionAborted",
    "TaskFailed",
    "LambdaFunctionFailed",
)


def redact_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record (item, message body) masked like the logs, its generated top-level fields kept."""
    masked: dict[str, Any] = mask_document(record, exempt=RECORD_GENERATED_FIELDS, in_place=True)
    return masked


def redact(value: Any) -> Any:
    """``value`` with every PAN-looking digit run in its strings, keys and numbers masked."""
    return mask_document(value, in_place=True)


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        # Milliseconds, like payments.clock.iso_from_ms: one timeline format (string order is time order).
        return iso_from_datetime(value)
    return str(value)


@dataclass(frozen=True)
class TraceNames:
    """Where the records are; None leaves a section out (reported as skipped, not as absent)."""

    region: str
    table: str
    audit_table: str | None = None
    state_machine_arn: str | None = None
    queues: Mapping[str, str] = field(default_factory=dict)  # role ("failed", "dlq") -> URL or name
    bucket: str | None = None
    log_groups: Sequence[str] = ()


@dataclass
class Trace:
    transaction_id: str
    transaction: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    archive: dict[str, Any] | None = None
    links: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # section -> why it was not read

    @property
    def found(self) -> bool:
        in_queue = any(queue["present"] for queue in self.queues)
        return bool(self.transaction or self.audit or self.executions or self.archive or in_queue)

    def timeline(self) -> list[dict[str, Any]]:
        """Every dated event, ``{"at", "source", "event"}``, in the order things happened.

        The audit transitions keep their version order (``read_audit``): the writers' clocks may
        disagree, so their times are shown, never used to reorder them. The workflow's starts and
        stops are placed among them by time, each transition counting as no earlier than the one
        before it. Messages still in a queue come last, oldest send first: they say where the
        payment stands now (a message dead-lettered after its retries keeps its first send time).
        """
        history: list[tuple[int, dict[str, Any]]] = []
        floor = 0
        for entry in self.audit:
            floor = max(floor, ms_from_iso(str(entry.get("at") or "")))
            event = f"{entry.get('from_status')} → {entry.get('to_status')} by {entry.get('actor')}"
            history.append((floor, {"at": entry.get("at"), "source": "audit", "event": event}))
        workflow: list[tuple[int, dict[str, Any]]] = []
        for execution in self.executions:
            name = execution["name"]
            started = {"at": execution.get("start"), "source": "workflow", "event": f"{name} started"}
            workflow.append((ms_from_iso(str(execution.get("start") or "")), started))
            if execution.get("stop"):
                what = f"{name} {execution['status']}"
                if execution.get("failed_state"):
                    what += f" in {execution['failed_state']}"
                if execution.get("error"):
                    what += f": {execution['error']}"
                stopped = {"at": execution["stop"], "source": "workflow", "event": what}
                workflow.append((ms_from_iso(str(execution["stop"])), stopped))
        workflow.sort(key=lambda pair: pair[0])
        merged = [event for _, event in heapq.merge(history, workflow, key=lambda pair: pair[0])]
        waiting = [
            {"at": found["sent_at"], "source": message["queue"], "event": f"message in {message['name']}"}
            for message in self.queues
            for found in message.get("messages", [])
        ]
        return merged + sorted(waiting, key=lambda e: ms_from_iso(str(e["at"] or "")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "transaction": self.transaction,
            "audit": self.audit,
            "executions": self.executions,
            "queues": self.queues,
            "archive": self.archive,
            "links": self.links,
            "timeline": self.timeline(),
            "skipped": self.skipped,
        }


def check_id(transaction_id: str) -> int:
    """The epoch ms encoded in a well-formed id; OpsError for anything else."""
    if not is_transaction_id(transaction_id):
        # Masked: what was typed may be a card number pasted by mistake.
        raise OpsError(
            f"not a transaction id: {mask_pans(transaction_id)!r} "
            "(expected txn_ followed by a 26-character ULID)"
        )
    return timestamp_of(transaction_id)


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return redact_record(from_attributes(item))


def read_transaction(ddb: Any, table: str, transaction_id: str) -> dict[str, Any] | None:
    response = ddb.query(
        TableName=table,
        KeyConditionExpression="transaction_id = :t",
        ExpressionAttributeValues={":t": {"S": transaction_id}},
        ConsistentRead=True,
        Limit=1,
    )
    items = response.get("Items", [])
    if not items:
        return None
    item = _plain(items[0])
    # Internal bookkeeping (outbox lists, lease owner tokens) is noise in a story.
    for key in ("stream_outbox", "outbox", "lease_owner"):
        item.pop(key, None)
    return item


def read_audit(ddb: Any, table: str, transaction_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "transaction_id = :t",
        "ExpressionAttributeValues": {":t": {"S": transaction_id}},
    }
    for _ in range(100):  # bound on a loop driven by a remote service
        page = ddb.query(**request)
        items.extend(_plain(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for item in items:
        item.pop("expires_at", None)
    # Transition order (``version``), not the writers' clocks: they disagree (timestamps are shown).
    return sorted(items, key=lambda i: (int(i.get("version") or 0), str(i.get("event_id", ""))))


def _execution_arn(state_machine_arn: str, name: str) -> str:
    # arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def _failure(sfn: Any, execution_arn: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(failed state, error, cause, failed at) from the execution history, bounded."""
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution_arn, "reverseOrder": True, "maxResults": 100}
    while len(events) < MAX_HISTORY_EVENTS:
        page = sfn.get_execution_history(**request)
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    error = cause = state = at = None
    for event in sorted(events, key=lambda e: -int(e.get("id", 0))):  # newest first
        details = next(
            (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
        )
        if error is None and event.get("type") in FAILURE_EVENTS:
            error, cause, at = details.get("error"), details.get("cause"), iso(event.get("timestamp"))
        if error is not None and event.get("type", "").endswith("StateEntered"):
            state = details.get("name")
            break
    return state, error, cause, at


def read_executions(
    sfn: Any, state_machine_arn: str, transaction_id: str, region: str
) -> list[dict[str, Any]]:
    arn = _execution_arn(state_machine_arn, transaction_id)
    try:
        described = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return []
        raise
    status = str(described.get("status"))
    execution: dict[str, Any] = {
        "name": transaction_id,
        "arn": arn,
        "status": status,
        "start": iso(described.get("startDate")),
        "stop": iso(described.get("stopDate")),
        "failed_state": None,
        "error": described.get("error"),
        "cause": described.get("cause"),
        "link": execution_link(region, arn),
    }
    if status in UNSUCCESSFUL_EXECUTIONS:
        state, error, cause, at = _failure(sfn, arn)
        execution["stop"] = execution["stop"] or at
        execution["failed_state"] = state
        execution["error"] = execution["error"] or error
        execution["cause"] = execution["cause"] or cause
    return [redact(execution)]


def peek_queue(
    sqs: Any, queue_url: str, transaction_id: str, rounds: int = PEEK_ROUNDS
) -> list[dict[str, Any]]:
    """Messages of ``queue_url`` whose body names ``transaction_id``, without consuming any.

    SQS has no "peek": a message can only be seen by receiving it. Receiving with
    VisibilityTimeout=0 would hand the same first messages back on every call (so a deep queue
    is never looked past its head) and, on a busy queue, race the consumer for each one. So the
    batches are received hidden for a short PEEK_VISIBILITY_S (enough for the next receives to
    return *other* messages), and every message received is made visible again with
    ChangeMessageVisibility(0) as soon as the sample is taken, also when the peek fails. At most
    ``rounds`` batches of 10: a bounded sample of a deep queue. Each receive counts toward the
    queue's maxReceiveCount, which is why the count is small and ``--peek-max 0`` turns it off.
    """
    found: list[dict[str, Any]] = []
    held: dict[str, str] = {}  # message id -> latest receipt handle
    try:
        for _ in range(rounds):
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=PEEK_VISIBILITY_S,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in held]
            for message in messages:
                held[message["MessageId"]] = message["ReceiptHandle"]
            if not fresh:
                break  # empty, or only messages already seen: the whole queue was looked at
            found.extend(_describe(m) for m in fresh if _names(m.get("Body", ""), transaction_id))
    finally:
        handles = list(held.values())
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for i, handle in enumerate(handles[start : start + 10])
                ],
            )
    return found


def _describe(message: Mapping[str, Any]) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    sent_ms = int(attributes.get("SentTimestamp", "0") or 0)
    return {
        "message_id": message["MessageId"],
        "sent_at": iso_from_ms(sent_ms) if sent_ms else None,
        "age_s": round(time.time() - sent_ms / 1000) if sent_ms else None,
        "receive_count": int(attributes.get("ApproximateReceiveCount", "0") or 0),
        "body": _redact_body(_body(message.get("Body", ""))),
    }


def _redact_body(body: Any) -> Any:
    return redact_record(body) if isinstance(body, Mapping) else redact(body)


def _body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _names(body: str, transaction_id: str) -> bool:
    parsed = _body(body)
    if isinstance(parsed, Mapping):
        return parsed.get("transaction_id") == transaction_id
    return transaction_id in body


def find_settlement_archive(
    s3: Any, bucket: str, transaction_id: str, timestamp_ms: int
) -> dict[str, Any] | None:
    """The object settlement writes for a COMPLETED payment (``transactions/YYYY/MM/DD/<id>.json``)."""
    key = settled_key(transaction_id, timestamp_ms)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", "403"}:
            return None  # 403: S3 answers it for a missing key when ListBucket is not granted
        raise
    return {
        "bucket": bucket,
        "object": key,
        "kind": "settlement",
        "archived_at": iso(head.get("LastModified")),
    }


def find_archive(s3: Any, bucket: str, transaction_id: str, timestamp_ms: int) -> dict[str, Any] | None:
    """The cleanup archive object holding the transaction, found through the manifests.

    Cleanup archives under ``cleanup/<cutoff date>/<run>/``; a row is archived only when it is
    older than the cutoff, so only cutoff dates after the transaction's day can hold it.
    """
    day = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).date().isoformat()
    row_key = row_id(transaction_id, timestamp_ms)
    paginator = s3.get_paginator("list_objects_v2")
    cutoffs: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{ARCHIVE_PREFIX}/", Delimiter="/"):
        cutoffs.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    read = 0
    for prefix in sorted(cutoffs):
        if prefix.rstrip("/").rsplit("/", 1)[-1] <= day:
            continue
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith(MANIFEST_SUFFIX):
                    continue
                read += 1
                if read > MAX_MANIFESTS:
                    raise OpsError(f"more than {MAX_MANIFESTS} archive manifests to search; stopped")
                manifest = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                if any(k.get("key") == row_key for k in manifest.get("keys", [])):
                    return {
                        "bucket": bucket,
                        "object": manifest.get("object"),
                        "kind": "cleanup",
                        "manifest": obj["Key"],
                        "archived_at": iso(obj.get("LastModified")),
                    }
    return None


# -- console links ---------------------------------------------------------------------------
def execution_link(region: str, execution_arn: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{quote(execution_arn, safe='')}"
    )


def _insights(text: str) -> str:
    # The Logs Insights fragment is URL-encoded, then "%" becomes "*" (the console's own form).
    return quote(text, safe="").replace("%", "*")


def logs_insights_link(region: str, log_groups: Sequence[str], transaction_id: str, window_s: int) -> str:
    query = (
        "fields @timestamp, @log, @message\n"
        f"| filter @message like '{transaction_id}'\n"
        "| sort @timestamp asc\n| limit 500"
    )
    sources = "".join(f"~'{_insights(group)}" for group in log_groups)
    detail = (
        f"~(end~0~start~-{window_s}~timeType~'RELATIVE~unit~'seconds"
        f"~editorString~'{_insights(query)}~source~({sources}))"
    )
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:logs-insights$3FqueryDetail$3D{detail}"
    )


def trace(
    transaction_id: str,
    names: TraceNames,
    *,
    ddb: Any,
    sqs: Any,
    s3: Any,
    sfn: Any,
    peek_rounds: int = PEEK_ROUNDS,
) -> Trace:
    timestamp_ms = check_id(transaction_id)
    result = Trace(transaction_id)
    result.transaction = read_transaction(ddb, names.table, transaction_id)
    if names.audit_table:
        result.audit = read_audit(ddb, names.audit_table, transaction_id)
    else:
        result.skipped["audit"] = "audit table unknown (no audit_table_name output, no suffix)"
    if names.state_machine_arn:
        result.executions = read_executions(sfn, names.state_machine_arn, transaction_id, names.region)
    else:
        result.skipped["executions"] = "state machine unknown (no state_machine_arn output)"
    if peek_rounds > 0:
        for role, ref in names.queues.items():
            try:
                url = queue_url(sqs, ref)
            except QueueNotFound:
                result.skipped[f"queue:{role}"] = f"queue {ref} not found"
                continue
            messages = peek_queue(sqs, url, transaction_id, peek_rounds)
            result.queues.append(
                {
                    "queue": role,
                    "name": url.rsplit("/", 1)[-1],
                    "present": bool(messages),
                    "messages": messages,
                }
            )
    else:
        result.skipped["queues"] = "not peeked (--peek-max 0)"
    if names.bucket:
        result.archive = find_settlement_archive(
            s3, names.bucket, transaction_id, timestamp_ms
        ) or find_archive(s3, names.bucket, transaction_id, timestamp_ms)
    else:
        result.skipped["archive"] = "archive bucket unknown"
    for execution in result.executions:
        result.links["execution"] = execution["link"]
    if names.log_groups:
        # From an hour before the transaction to now, at least a week.
        window = max(LOGS_WINDOW_S, int(time.time()) - timestamp_ms // 1000 + 3600)
        result.links["logs_insights"] = logs_insights_link(
            names.region, names.log_groups, transaction_id, window
        )
    return result
