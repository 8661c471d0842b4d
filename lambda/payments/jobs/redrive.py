"""Move messages from a dead-letter queue back to its source queue.

Native mode uses SQS's own message-move task (StartMessageMoveTask). Where the endpoint lacks it
(moto, older LocalStack) or a message count limit is asked for, a batched loop runs instead:
ReceiveMessage (10) → SendMessageBatch to the source → DeleteMessageBatch of exactly the entries
whose send succeeded. A crash between send and delete leaves the message in the DLQ to be sent
again (at-least-once), never lost; on FIFO queues a deterministic deduplication id makes that
second send a no-op within SQS's 5-minute deduplication window.

Each redrive is counted on the message itself: the loop sends it back with the message attribute
``redrive_count`` one higher (SQS keeps message attributes when it dead-letters a message). A
message already redriven ``max_redrives`` times is *parked*: left in the DLQ, not sent again, and
listed in the result, so a poison message cannot go round for ever. A native message-move task
cannot count, so it runs only with ``max_redrives=0`` (no limit).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from payments.jobs import JobError
from payments.jobs.calls import RequestCounter
from payments.queues import QueueNotFound, queue_url

MODES = ("auto", "native", "loop")
RECEIVE_LIMIT = 10  # SQS ReceiveMessage / SendMessageBatch / DeleteMessageBatch maximum
DEFAULT_VISIBILITY_TIMEOUT_S = 60
DEFAULT_WAIT_S = 2
DEFAULT_NATIVE_TIMEOUT_S = 900
MAX_LOOP_SECONDS = 3600
# Error codes with which an endpoint says, definitely, "no message-move tasks here". A 5xx is
# not one of them: it may come after the task started server-side, and a loop run beside a
# running task would move the same messages twice (moto's server answers a bare 500; there,
# use --mode loop).
_UNSUPPORTED_CODES = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAction",
    "NotImplemented",
    "UnknownOperation",
    "UnknownOperationException",
}
REDRIVE_COUNT_ATTRIBUTE = "redrive_count"
DEFAULT_MAX_REDRIVES = 3
MAX_MESSAGE_ATTRIBUTES = 10  # SQS limit per message
MAX_POLL_FAILURES = 5  # consecutive ListMessageMoveTasks errors before we stop watching
_COUNT_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str
    fifo: bool
    attributes: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[-1]


@dataclass
class RedriveResult:
    dlq: Queue
    source: Queue
    mode: str  # "native" | "loop" | "dry-run"
    dry_run: bool
    before: dict[str, dict[str, int]]
    after: dict[str, dict[str, int]] = field(default_factory=dict)
    received: int = 0
    sent: int = 0
    moved: int = 0
    failed_sends: int = 0
    failed_deletes: int = 0
    max_redrives: int = DEFAULT_MAX_REDRIVES
    max_messages: int | None = None
    parked: dict[str, dict[str, Any]] = field(default_factory=dict)  # message id -> why, how often
    native_task: dict[str, Any] | None = None
    fallback_reason: str | None = None
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not (self.failed_sends or self.failed_deletes)

    @property
    def would_move(self) -> int:
        """What a dry run would move: the DLQ's visible messages, at most ``max_messages``."""
        visible = self.before["dlq"]["visible"]
        return visible if self.max_messages is None else min(visible, self.max_messages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dlq": {"url": self.dlq.url, "arn": self.dlq.arn, "fifo": self.dlq.fifo},
            "source": {"url": self.source.url, "arn": self.source.arn, "fifo": self.source.fifo},
            "mode": self.mode,
            "dry_run": self.dry_run,
            "before": self.before,
            "after": self.after,
            "received": self.received,
            "sent": self.sent,
            "moved": self.moved,
            "failed_sends": self.failed_sends,
            "failed_deletes": self.failed_deletes,
            "would_move": self.would_move if self.dry_run else None,
            "max_messages": self.max_messages,
            "max_redrives": self.max_redrives,
            "parked": list(self.parked.values()),
            "native_task": self.native_task,
            "fallback_reason": self.fallback_reason,
            "requests": dict(sorted(self.requests.items())),
            "ok": self.ok,
        }


def _queue_url(sqs: Any, ref: str) -> str:
    try:
        return queue_url(sqs, ref)
    except QueueNotFound as exc:
        raise JobError(str(exc)) from exc


def describe_queue(sqs: Any, ref: str) -> Queue:
    url = _queue_url(sqs, ref)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    fifo = attributes.get("FifoQueue") == "true"
    return Queue(url=url, arn=attributes["QueueArn"], fifo=fifo, attributes=attributes)


def counts(sqs: Any, queue: Queue) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=_COUNT_ATTRIBUTES)["Attributes"]
    return _counts(attributes)


def _counts(attributes: Mapping[str, str]) -> dict[str, int]:
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


def find_source(sqs: Any, dlq: Queue) -> str:
    """The one queue that dead-letters into ``dlq``: from its RedriveAllowPolicy, else SQS's list."""
    policy_text = dlq.attributes.get("RedriveAllowPolicy")
    if policy_text:
        try:
            policy = json.loads(policy_text)
        except ValueError:
            policy = {}
        arns = policy.get("sourceQueueArns") or []
        if policy.get("redrivePermission") == "byQueue" and len(arns) == 1:
            return str(arns[0])
    urls = sqs.list_dead_letter_source_queues(QueueUrl=dlq.url).get("queueUrls", [])
    if len(urls) == 1:
        return str(urls[0])
    if not urls:
        raise JobError(f"no queue uses {dlq.name} as its dead-letter queue; pass --source-queue")
    raise JobError(f"{dlq.name} is the DLQ of several queues ({', '.join(urls)}); pass --source-queue")


def dedup_id(message: Mapping[str, Any]) -> str:
    """Same message → same id, so a rerun after a crash between send and delete is deduplicated.

    Not the original MessageDeduplicationId: if the original send is under five minutes old, SQS
    would accept the redriven copy as "successful" and silently drop it, and the loop would then
    delete the only remaining copy from the DLQ.
    """
    digest = hashlib.sha256()
    digest.update(message["MessageId"].encode("utf-8"))
    digest.update(b"\n")
    digest.update(message.get("Attributes", {}).get("MessageDeduplicationId", "").encode("utf-8"))
    digest.update(b"\n")
    digest.update(message["Body"].encode("utf-8"))
    return digest.hexdigest()


def _message_attributes(message: Mapping[str, Any]) -> dict[str, Any]:
    # Received attributes carry empty list fields that SendMessage rejects; keep the value fields.
    out: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        entry = {"DataType": value["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if key in value:
                entry[key] = value[key]
        out[name] = entry
    return out


def redrive_count(message: Mapping[str, Any]) -> int:
    """How many times ``message`` was redriven already (its ``redrive_count`` attribute, else 0)."""
    value = (message.get("MessageAttributes") or {}).get(REDRIVE_COUNT_ATTRIBUTE, {})
    try:
        return max(0, int(value.get("StringValue", "0")))
    except ValueError:
        return 0


def _transaction_id(body: str) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    value = parsed.get("transaction_id") if isinstance(parsed, dict) else None
    return str(value) if value is not None else None


def _park_reason(message: Mapping[str, Any], max_redrives: int) -> str | None:
    """Why ``message`` must stay in the DLQ, or None to send it back."""
    count = redrive_count(message)
    if max_redrives and count >= max_redrives:
        return f"redriven {count} time(s) already (limit {max_redrives})"
    attributes = message.get("MessageAttributes") or {}
    if (
        max_redrives
        and REDRIVE_COUNT_ATTRIBUTE not in attributes
        and len(attributes) >= MAX_MESSAGE_ATTRIBUTES
    ):
        return f"no room for the {REDRIVE_COUNT_ATTRIBUTE} attribute ({len(attributes)} attributes already)"
    return None


def _is_unsupported(exc: BaseException) -> str | None:
    """A definite "this endpoint has no message-move tasks", else None (see _UNSUPPORTED_CODES)."""
    if isinstance(exc, NotImplementedError):
        return f"not implemented by the endpoint ({exc})"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _UNSUPPORTED_CODES or status == 501:
            return f"{code or status}: {error.get('Message', '')}".strip()
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"HTTP {status} {error.get('Code', '?')}"
    return repr(exc)


def running_task(sqs: Any, dlq: Queue) -> dict[str, Any] | None:
    """The RUNNING message-move task of ``dlq``, if the endpoint lists one (None if it cannot)."""
    try:
        tasks = sqs.list_message_move_tasks(SourceArn=dlq.arn, MaxResults=1).get("Results", [])
    except (ClientError, NotImplementedError):
        return None
    if tasks and tasks[0].get("Status") == "RUNNING":
        return dict(tasks[0])
    return None


def _native(
    sqs: Any,
    result: RedriveResult,
    *,
    poll_interval_s: float,
    timeout_s: float,
    on_progress: ProgressCallback | None,
    sleep: Callable[[float], None],
) -> None:
    running = running_task(sqs, result.dlq)
    if running is not None:
        # Never start a second task (or a loop) beside one that is moving messages: follow it.
        task: dict[str, Any] = running
    else:
        handle = sqs.start_message_move_task(SourceArn=result.dlq.arn, DestinationArn=result.source.arn)
        task = {"TaskHandle": handle.get("TaskHandle"), "Status": "RUNNING"}
    result.mode = "native"
    deadline = time.monotonic() + timeout_s
    failures = 0
    while time.monotonic() < deadline:
        try:
            tasks = sqs.list_message_move_tasks(SourceArn=result.dlq.arn, MaxResults=1).get("Results", [])
        except (ClientError, NotImplementedError) as exc:
            # The task runs server-side whatever happens here: keep watching, never fall back.
            failures += 1
            if failures >= MAX_POLL_FAILURES:
                raise JobError(
                    f"message-move task {task.get('TaskHandle')} started, but following it failed "
                    f"{failures} times ({exc}); it continues server-side — check with `ops redrive --dry-run`"
                ) from exc
            sleep(poll_interval_s)
            continue
        failures = 0
        if tasks:
            task = tasks[0]
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            total = task.get("ApproximateNumberOfMessagesToMove")
            if on_progress:
                on_progress(moved, int(total) if total is not None else None)
            if task.get("Status") != "RUNNING":
                break
        sleep(poll_interval_s)
    result.native_task = {k: v for k, v in task.items() if k != "ResponseMetadata"}
    result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    status = task.get("Status")
    if status == "RUNNING":
        raise JobError(
            f"message-move task still running after {timeout_s:.0f} s (it continues server-side); "
            "check again with `ops redrive --dry-run`"
        )
    if status != "COMPLETED":
        raise JobError(f"message-move task ended {status}: {task.get('FailureReason', 'no reason given')}")


def _loop(
    sqs: Any,
    result: RedriveResult,
    *,
    max_messages: int | None,
    visibility_timeout_s: int,
    wait_s: int,
    time_limit_s: float,
    on_progress: ProgressCallback | None,
) -> None:
    result.mode = "loop"
    parked: dict[str, str] = {}  # message id -> its latest receipt handle
    try:
        _loop_batches(
            sqs,
            result,
            parked,
            max_messages=max_messages,
            visibility_timeout_s=visibility_timeout_s,
            wait_s=wait_s,
            time_limit_s=time_limit_s,
            on_progress=on_progress,
        )
    finally:
        _unhide(sqs, result.dlq, parked)


def _unhide(sqs: Any, dlq: Queue, parked: Mapping[str, str]) -> None:
    """Make parked messages visible in the DLQ again at once (best effort: else they reappear when
    their visibility timeout ends), for whoever looks at them next."""
    handles = list(parked.values())
    for start in range(0, len(handles), RECEIVE_LIMIT):
        chunk = handles[start : start + RECEIVE_LIMIT]
        with contextlib.suppress(ClientError):
            sqs.change_message_visibility_batch(
                QueueUrl=dlq.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)
                ],
            )


def _entries(
    result: RedriveResult, messages: list[dict[str, Any]], parked: dict[str, str]
) -> list[dict[str, Any]]:
    """The SendMessageBatch entries of a received batch (``Id``: the index in ``messages``); the
    messages to park are recorded in ``result.parked`` and ``parked`` instead."""
    entries = []
    for index, message in enumerate(messages):
        reason = _park_reason(message, result.max_redrives)
        if reason is not None:
            parked[message["MessageId"]] = message["ReceiptHandle"]
            result.parked[message["MessageId"]] = {
                "message_id": message["MessageId"],
                "transaction_id": _transaction_id(message["Body"]),
                "redrives": redrive_count(message),
                "reason": reason,
            }
            continue
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
        attributes = _message_attributes(message)
        if result.max_redrives:
            count = str(redrive_count(message) + 1)
            attributes[REDRIVE_COUNT_ATTRIBUTE] = {"DataType": "Number", "StringValue": count}
        if attributes:
            entry["MessageAttributes"] = attributes
        if result.source.fifo:
            system = message.get("Attributes", {})
            entry["MessageGroupId"] = system.get("MessageGroupId") or message["MessageId"]
            entry["MessageDeduplicationId"] = dedup_id(message)
        entries.append(entry)
    return entries


def _loop_batches(
    sqs: Any,
    result: RedriveResult,
    parked: dict[str, str],
    *,
    max_messages: int | None,
    visibility_timeout_s: int,
    wait_s: int,
    time_limit_s: float,
    on_progress: ProgressCallback | None,
) -> None:
    total = max_messages if max_messages is not None else result.before["dlq"]["visible"]
    deadline = time.monotonic() + time_limit_s
    while time.monotonic() < deadline:
        # --max counts sends: a message sent but not deleted still reached the source queue.
        want = RECEIVE_LIMIT if max_messages is None else min(RECEIVE_LIMIT, max_messages - result.sent)
        if want <= 0:
            return
        messages = sqs.receive_message(
            QueueUrl=result.dlq.url,
            MaxNumberOfMessages=want,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=visibility_timeout_s,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        result.received += len(messages)
        if all(m["MessageId"] in result.parked for m in messages):
            return  # only parked messages left (their visibility ran out during a long run)
        entries = _entries(result, messages, parked)
        if not entries:
            continue
        sent = sqs.send_message_batch(QueueUrl=result.source.url, Entries=entries)
        succeeded = [int(s["Id"]) for s in sent.get("Successful", [])]
        result.sent += len(succeeded)
        result.failed_sends += len(sent.get("Failed", []))
        if succeeded:
            deleted = sqs.delete_message_batch(
                QueueUrl=result.dlq.url,
                Entries=[{"Id": str(i), "ReceiptHandle": messages[i]["ReceiptHandle"]} for i in succeeded],
            )
            # A failed delete means the message will be sent again later: counted, not moved.
            failed_deletes = len(deleted.get("Failed", []))
            result.failed_deletes += failed_deletes
            result.moved += len(succeeded) - failed_deletes
        if on_progress:
            on_progress(result.moved, total)
        if result.failed_deletes:
            # Stop at the first failed delete: each further batch could only add duplicates in
            # the source queue while the DLQ refuses deletes.
            return
        if sent.get("Failed"):
            # Stop rather than spin on a source queue that refuses messages; the unsent ones
            # stay in the DLQ and reappear after the visibility timeout.
            return


def _check_options(mode: str, max_messages: int | None, max_redrives: int) -> None:
    if mode not in MODES:
        raise JobError(f"mode must be one of {', '.join(MODES)}")
    if max_messages is not None and max_messages < 1:
        raise JobError("--max must be at least 1")
    if mode == "native" and max_messages is not None:
        raise JobError("a native message-move task cannot stop after N messages; use --mode loop or auto")
    if max_redrives < 0:
        raise JobError("--max-redrives must be 0 (no limit) or more")
    if mode == "native" and max_redrives:
        raise JobError(
            "a native message-move task cannot count redrives per message: use --mode loop, "
            "or --max-redrives 0 to move without a limit"
        )


def redrive(
    sqs: Any,
    dlq: str,
    *,
    source: str | None = None,
    max_messages: int | None = None,
    mode: str = "auto",
    dry_run: bool = False,
    visibility_timeout_s: int = DEFAULT_VISIBILITY_TIMEOUT_S,
    wait_s: int = DEFAULT_WAIT_S,
    native_timeout_s: float = DEFAULT_NATIVE_TIMEOUT_S,
    poll_interval_s: float = 2.0,
    time_limit_s: float = MAX_LOOP_SECONDS,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_redrives: int = DEFAULT_MAX_REDRIVES,
) -> RedriveResult:
    """Redrive ``dlq`` (name, URL or ARN) into its source queue; see the module docstring.

    ``max_redrives``: redrives a message may have had before it is parked instead (0: no limit,
    no counting; only then does ``auto`` try a native message-move task first)."""
    _check_options(mode, max_messages, max_redrives)
    counter = RequestCounter()
    with counter.watching(sqs):
        dlq_queue = describe_queue(sqs, dlq)
        source_queue = describe_queue(sqs, source or find_source(sqs, dlq_queue))
        if source_queue.fifo != dlq_queue.fifo:
            raise JobError("a FIFO queue's dead-letter queue must also be FIFO (and vice versa)")
        result = RedriveResult(
            dlq=dlq_queue,
            source=source_queue,
            mode="dry-run" if dry_run else mode,
            dry_run=dry_run,
            before={"dlq": _counts(dlq_queue.attributes), "source": _counts(source_queue.attributes)},
            requests=counter.counts,
            max_redrives=max_redrives,
            max_messages=max_messages,
        )
        if dry_run:
            # Receiving would bump receive counts and hide messages; counts and attributes only.
            result.after = result.before
            return result
        try:
            # Only the loop can stop after N messages or count redrives per message.
            loop_only = mode == "loop" or (mode == "auto" and (max_messages is not None or max_redrives > 0))
            if loop_only and running_task(sqs, dlq_queue) is not None:
                raise JobError(
                    f"a message-move task is RUNNING on {dlq_queue.name}: a loop beside it would move "
                    "messages twice; wait for it (ops redrive --dry-run) or cancel it first"
                )
            if not loop_only:
                try:
                    _native(
                        sqs,
                        result,
                        poll_interval_s=poll_interval_s,
                        timeout_s=native_timeout_s,
                        on_progress=on_progress,
                        sleep=sleep,
                    )
                    return result
                except (ClientError, NotImplementedError) as exc:
                    reason = _is_unsupported(exc)
                    if reason is None:
                        raise JobError(
                            f"StartMessageMoveTask failed ({_describe(exc)}), which does not say the "
                            "endpoint lacks message-move tasks: a task may have started. Check with "
                            "`ops redrive --dry-run`; on an emulator without message-move tasks use "
                            "--mode loop"
                        ) from exc
                    if mode == "native":
                        raise JobError(
                            f"native redrive unavailable here ({reason}); use --mode loop"
                        ) from exc
                    result.fallback_reason = reason
            _loop(
                sqs,
                result,
                max_messages=max_messages,
                visibility_timeout_s=visibility_timeout_s,
                wait_s=wait_s,
                time_limit_s=time_limit_s,
                on_progress=on_progress,
            )
            return result
        finally:
            # Best effort: the counts must not mask the error that ended the run.
            with contextlib.suppress(ClientError, JobError):
                result.after = {"dlq": counts(sqs, dlq_queue), "source": counts(sqs, source_queue)}
