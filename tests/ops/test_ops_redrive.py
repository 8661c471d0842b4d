"""``ops redrive`` and ``payments.jobs.redrive``: nothing lost, FIFO-aware, dry runs move nothing."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from ops_testkit import FAILED_QUEUE, Interrupt, Platform, fail_after
from payments.jobs.redrive import dedup_id, redrive

LOOP = ("--wait-seconds", "0")
NATIVE_OK = ("--max-redrives", "0")  # no redrive counting: a native message-move task may run


def _fill_dlq(platform: Platform, count: int, fifo: bool = False) -> list[str]:
    url = platform.fifo_dlq_url if fifo else platform.dlq_url
    bodies = [json.dumps({"transaction_id": f"txn_{i:04d}", "error": "boom"}) for i in range(count)]
    for start in range(0, count, 10):
        entries = []
        for i in range(start, min(count, start + 10)):
            entry: dict[str, Any] = {
                "Id": str(i),
                "MessageBody": bodies[i],
                "MessageAttributes": {
                    "event_type": {"DataType": "String", "StringValue": "failure"},
                    "attempt": {"DataType": "Number", "StringValue": str(i)},
                },
            }
            if fifo:
                entry["MessageGroupId"] = f"txn_group_{i % 3}"
                entry["MessageDeduplicationId"] = f"dedup-{i}"
            entries.append(entry)
        assert not platform.sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    return bodies


def test_loop_moves_every_message_and_keeps_attributes(run: Any, platform: Platform) -> None:
    bodies = _fill_dlq(platform, 23)
    result = run("redrive", *LOOP, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "loop"  # counting redrives needs the loop: no native task tried
    assert summary["fallback_reason"] is None
    assert summary["moved"] == 23
    assert summary["before"]["dlq"]["visible"] == 23
    assert summary["after"] == {
        "dlq": {"visible": 0, "in_flight": 0},
        "source": {"visible": 23, "in_flight": 0},
    }
    moved = platform.drain(platform.failed_url)
    assert Counter(m["Body"] for m in moved) == Counter(bodies)
    for message in moved:
        attempt = json.loads(message["Body"])["transaction_id"][-4:]
        assert message["MessageAttributes"]["event_type"]["StringValue"] == "failure"
        assert message["MessageAttributes"]["attempt"] == {
            "DataType": "Number",
            "StringValue": str(int(attempt)),
        }
        assert message["MessageAttributes"]["redrive_count"] == {"DataType": "Number", "StringValue": "1"}
    # 3 calls per 10 messages plus a fixed overhead (resolve, counts, one empty receive).
    calls = sum(summary["requests"].values())
    assert summary["requests"]["send_message_batch"] == 3
    assert calls <= 3 * 3 + 9


def test_really_dead_lettered_messages_go_back_to_their_source(run: Any, platform: Platform) -> None:
    for i in range(4):
        platform.sqs.send_message(QueueUrl=platform.failed_url, MessageBody=f"m{i}")
    for _ in range(8):  # exceed maxReceiveCount=3: SQS moves them to the DLQ
        platform.sqs.receive_message(
            QueueUrl=platform.failed_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
    assert platform.queue_counts(platform.dlq_url)[0] == 4
    result = run("redrive", *LOOP)
    assert result.exit_code == 0, result.output
    assert f"failed-transactions-dlq-test → {FAILED_QUEUE}" in result.stdout
    assert "moved 4 message(s)" in result.stdout
    assert sorted(m["Body"] for m in platform.drain(platform.failed_url)) == ["m0", "m1", "m2", "m3"]


def test_fifo_redrive_keeps_group_ids_and_order(run: Any, platform: Platform) -> None:
    bodies = _fill_dlq(platform, 17, fifo=True)
    result = run("redrive", "--queue", platform.fifo_dlq_url, *LOOP, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["source"]["fifo"] is True
    assert summary["moved"] == 17
    moved = platform.drain(platform.fifo_source_url)
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    by_group: dict[str, list[int]] = {}
    for message in moved:
        index = int(json.loads(message["Body"])["transaction_id"][-4:])
        assert message["Attributes"]["MessageGroupId"] == f"txn_group_{index % 3}"
        by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(index)
    for indexes in by_group.values():
        assert indexes == sorted(indexes)  # order within a message group survives


def test_max_moves_at_most_n(run: Any, platform: Platform) -> None:
    _fill_dlq(platform, 12)
    result = run("redrive", *LOOP, "--max", "5", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["moved"] == 5
    assert platform.queue_counts(platform.dlq_url) == (7, 0)
    assert platform.queue_counts(platform.failed_url) == (5, 0)


def test_dry_run_moves_nothing_and_receives_nothing(run: Any, platform: Platform) -> None:
    _fill_dlq(platform, 6)
    result = run("redrive", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True
    assert summary["moved"] == 0
    assert summary["before"]["dlq"]["visible"] == 6
    assert "receive_message" not in summary["requests"]
    assert platform.queue_counts(platform.dlq_url) == (6, 0)
    assert platform.queue_counts(platform.failed_url) == (0, 0)
    first = platform.sqs.receive_message(QueueUrl=platform.dlq_url, MessageSystemAttributeNames=["All"])
    assert first["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "1"
    table = run("redrive", "--dry-run")
    assert "DRY RUN" in table.stdout
    assert "nothing was moved" in table.stdout


def test_native_mode_fails_clearly_where_the_endpoint_lacks_it(run: Any, platform: Platform) -> None:
    _fill_dlq(platform, 2)
    result = run("redrive", *NATIVE_OK, "--mode", "native")
    assert result.exit_code == 1
    assert "native redrive unavailable" in result.stderr
    assert platform.queue_counts(platform.dlq_url)[0] == 2


class _NativeMover:
    """Stands in for SQS's server-side message-move task, which moto does not implement: answers
    StartMessageMoveTask/ListMessageMoveTasks through botocore's before-call hook and moves the
    messages with a separate client, as AWS would do server-side."""

    def __init__(self, platform: Platform, status: str = "COMPLETED") -> None:
        self.platform = platform
        self.status = status
        self.started: list[dict[str, Any]] = []
        self.moved = 0

    def register(self, client: Any) -> None:
        if client.meta.service_model.service_name == "sqs":
            client.meta.events.register("before-call.sqs.StartMessageMoveTask", self.start)
            client.meta.events.register("before-call.sqs.ListMessageMoveTasks", self.list)

    def start(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.started.append(json.loads(params["body"]))
        for message in self.platform.drain(self.platform.dlq_url):
            self.platform.sqs.send_message(QueueUrl=self.platform.failed_url, MessageBody=message["Body"])
            self.moved += 1
        return AWSResponse("https://sqs", 200, HTTPHeaders(), None), {"TaskHandle": "task-1"}

    def list(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        task = {
            "TaskHandle": "task-1",
            "Status": self.status,
            "SourceArn": json.loads(params["body"])["SourceArn"],
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.moved,
        }
        if self.status == "FAILED":
            task["FailureReason"] = "AccessDenied on the destination"
        return AWSResponse("https://sqs", 200, HTTPHeaders(), None), {"Results": [task]}


def test_native_message_move_task_is_used_when_available(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    _fill_dlq(platform, 9)
    mover = _NativeMover(platform)
    client_hooks(mover.register)
    result = run("redrive", *NATIVE_OK, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "native"
    assert summary["moved"] == 9
    assert summary["native_task"]["Status"] == "COMPLETED"
    assert mover.started[0]["SourceArn"].endswith(":failed-transactions-dlq-test")
    assert mover.started[0]["DestinationArn"].endswith(":failed-transactions-test")
    assert platform.queue_counts(platform.failed_url) == (9, 0)


def test_failed_native_task_exits_1(run: Any, platform: Platform, client_hooks: Any) -> None:
    _fill_dlq(platform, 1)
    client_hooks(_NativeMover(platform, status="FAILED").register)
    result = run("redrive", *NATIVE_OK)
    assert result.exit_code == 1
    assert "AccessDenied on the destination" in result.stderr


@pytest.mark.parametrize("fifo", [False, True])
def test_interrupted_redrive_loses_nothing_and_a_rerun_finishes(
    run: Any, platform: Platform, client_hooks: Any, fifo: bool
) -> None:
    bodies = _fill_dlq(platform, 35, fifo=fifo)
    dlq = platform.fifo_dlq_url if fifo else platform.dlq_url
    source = platform.fifo_source_url if fifo else platform.failed_url
    args = ("redrive", "--queue", dlq, *LOOP, "--visibility-timeout", "1", "--json")
    # Crash after the second batch was sent but before it was deleted from the DLQ.
    client_hooks(fail_after("DeleteMessageBatch", 1))
    with pytest.raises(Interrupt):
        run(*args)
    client_hooks.clear()
    time.sleep(1.2)  # the unacknowledged batch becomes visible in the DLQ again
    rerun = run(*args)
    assert rerun.exit_code == 0, rerun.output
    assert platform.queue_counts(dlq) == (0, 0)
    moved = Counter(m["Body"] for m in platform.drain(source))
    assert set(moved) == set(bodies)  # nothing lost
    if fifo:
        assert sum(moved.values()) == len(bodies)  # the deterministic dedup id absorbed the resend
    else:
        assert sum(moved.values()) <= len(bodies) + 10  # at-least-once: at most the one batch again


def test_a_source_refusing_a_send_stops_the_loop_after_that_batch_with_progress_against_the_total(
    platform: Platform,
) -> None:
    """The source queue refuses one entry of the first batch: the loop stops there (the unsent
    message stays in the DLQ) rather than spinning through the other batches, and its progress is
    reported against the DLQ's depth at the start."""
    _fill_dlq(platform, 25)
    sqs = platform.sqs
    batches: list[int] = []

    def refuse_one(params: dict[str, Any], **_: Any) -> None:
        batches.append(len(params["Entries"]))

    def report_failed(parsed: dict[str, Any], **_: Any) -> None:
        done = parsed.get("Successful", [])
        if done:
            parsed["Failed"] = [{"Id": done.pop()["Id"], "SenderFault": False, "Code": "InternalError"}]

    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", refuse_one)
    sqs.meta.events.register("after-call.sqs.SendMessageBatch", report_failed)
    progress: list[tuple[int, int | None]] = []
    try:
        result = redrive(
            sqs, platform.dlq_url, mode="loop", wait_s=0, on_progress=lambda m, t: progress.append((m, t))
        )
    finally:
        sqs.meta.events.unregister("before-parameter-build.sqs.SendMessageBatch", refuse_one)
        sqs.meta.events.unregister("after-call.sqs.SendMessageBatch", report_failed)
    assert len(batches) == 1 and (result.failed_sends, result.moved) == (1, batches[0] - 1)
    assert progress == [(result.moved, 25)]


def test_deletes_only_messages_whose_send_succeeded(run: Any, platform: Platform, client_hooks: Any) -> None:
    bodies = _fill_dlq(platform, 10)
    held: list[dict[str, Any]] = []

    def register(client: Any) -> None:
        if client.meta.service_model.service_name != "sqs":
            return

        def drop_first(params: dict[str, Any], **_: Any) -> None:
            held.append(params["Entries"].pop(0))

        def report_failed(parsed: dict[str, Any], **_: Any) -> None:
            parsed.setdefault("Failed", []).append(
                {"Id": held[-1]["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            )

        client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", drop_first)
        client.meta.events.register("after-call.sqs.SendMessageBatch", report_failed)

    client_hooks(register)
    result = run("redrive", *LOOP, "--visibility-timeout", "1", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["moved"], summary["failed_sends"], summary["ok"]) == (9, 1, False)
    time.sleep(1.2)
    left = platform.drain(platform.dlq_url)
    assert [m["Body"] for m in left] == [held[0]["MessageBody"]]
    assert sorted(m["Body"] for m in platform.drain(platform.failed_url) + left) == sorted(bodies)


def test_source_queue_can_be_given_and_is_required_when_unknown(run: Any, platform: Platform) -> None:
    orphan = platform.sqs.create_queue(QueueName="orphan-dlq")["QueueUrl"]
    platform.sqs.send_message(QueueUrl=orphan, MessageBody="x")
    missing = run("redrive", "--queue", "orphan-dlq", *LOOP)
    assert missing.exit_code == 1
    assert "--source-queue" in missing.stderr
    given = run("redrive", "--queue", "orphan-dlq", "--source-queue", FAILED_QUEUE, *LOOP, "--json")
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["moved"] == 1


def test_dedup_id_is_stable_per_message_and_distinct_across_messages() -> None:
    a = {"MessageId": "1", "Body": "x", "Attributes": {"MessageDeduplicationId": "d"}}
    b = {"MessageId": "2", "Body": "x", "Attributes": {"MessageDeduplicationId": "d"}}
    assert dedup_id(a) == dedup_id(dict(a))
    assert dedup_id(a) != dedup_id(b)
    assert len(dedup_id(a)) <= 128


def test_library_counts_calls_per_message(platform: Platform) -> None:
    _fill_dlq(platform, 100)
    result = redrive(platform.sqs, platform.dlq_url, mode="loop", wait_s=0)
    assert result.moved == 100
    # 3 calls per 10 messages, one final empty receive and a fixed 7 (resolve both queues, the
    # RUNNING-task check, counts before and after).
    assert sum(result.requests.values()) / result.moved <= 0.37


# -- defect 7: fallback only on a definite "unsupported"; --max counts sends ----------------------
class _MoveTasks:
    """SQS message-move tasks as AWS answers them, with injected failures: ``list_errors`` are
    the (1-based) ListMessageMoveTasks calls answered with HTTP 500, ``start_error`` answers
    StartMessageMoveTask with that HTTP status, ``running`` pretends a task is already running."""

    def __init__(
        self,
        platform: Platform,
        list_errors: tuple[int, ...] = (),
        start_error: int | None = None,
        running: bool = False,
    ) -> None:
        self.mover = _NativeMover(platform)
        self.list_errors = list_errors
        self.start_error = start_error
        self.running = running
        self.list_calls = 0
        self.calls: Counter[str] = Counter()

    def register(self, client: Any) -> None:
        if client.meta.service_model.service_name != "sqs":
            return
        client.meta.events.register("before-call.sqs.StartMessageMoveTask", self.start)
        client.meta.events.register("before-call.sqs.ListMessageMoveTasks", self.list)
        client.meta.events.register(
            "before-call.sqs.ReceiveMessage", lambda **_: self.calls.update(["receive"])
        )

    @staticmethod
    def _error(status: int, code: str) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://sqs", status, HTTPHeaders(), None), {
            "Error": {"Code": code, "Message": "injected"}
        }

    def start(self, params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls["start"] += 1
        if self.start_error:
            return self._error(
                self.start_error, "InternalError" if self.start_error >= 500 else "InvalidAction"
            )
        self.running = False
        return self.mover.start(params, **kwargs)

    def list(self, params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.list_calls += 1
        if self.list_calls in self.list_errors:
            return self._error(500, "InternalError")
        if self.running:
            self.running = False  # it completes while we watch, having moved everything
            for message in self.mover.platform.drain(self.mover.platform.dlq_url):
                self.mover.platform.sqs.send_message(
                    QueueUrl=self.mover.platform.failed_url, MessageBody=message["Body"]
                )
                self.mover.moved += 1
            task = {"TaskHandle": "task-0", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 0}
            return AWSResponse("https://sqs", 200, HTTPHeaders(), None), {"Results": [task]}
        if not self.mover.started and self.mover.moved == 0:
            return AWSResponse("https://sqs", 200, HTTPHeaders(), None), {"Results": []}
        return self.mover.list(params, **kwargs)


def test_a_5xx_while_following_the_native_task_never_switches_to_the_loop(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    _fill_dlq(platform, 12)
    tasks = _MoveTasks(platform, list_errors=(2, 3))  # call 1 is the RUNNING check before the start
    client_hooks(tasks.register)
    result = run("redrive", *NATIVE_OK, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["mode"], summary["moved"], summary["fallback_reason"]) == ("native", 12, None)
    assert tasks.calls["receive"] == 0  # the loop never ran beside the task
    assert platform.queue_counts(platform.failed_url) == (12, 0)


def test_a_5xx_from_start_is_not_taken_for_unsupported(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    _fill_dlq(platform, 4)
    tasks = _MoveTasks(platform, start_error=500)
    client_hooks(tasks.register)
    result = run("redrive", *NATIVE_OK)
    assert result.exit_code == 1
    assert "does not say the endpoint lacks message-move tasks" in result.stderr
    assert tasks.calls["receive"] == 0
    assert platform.queue_counts(platform.dlq_url) == (4, 0)


def test_a_definite_unsupported_answer_from_start_falls_back_to_the_loop(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    _fill_dlq(platform, 4)
    client_hooks(_MoveTasks(platform, start_error=400).register)  # InvalidAction
    result = run("redrive", *NATIVE_OK, *LOOP, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "loop" and summary["moved"] == 4
    assert summary["fallback_reason"].startswith("InvalidAction")


def test_a_running_move_task_is_followed_not_started_again(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    _fill_dlq(platform, 5)
    tasks = _MoveTasks(platform, running=True)
    client_hooks(tasks.register)
    result = run("redrive", *NATIVE_OK, "--json")
    assert result.exit_code == 0, result.output
    assert tasks.calls["start"] == 0
    assert json.loads(result.stdout)["mode"] == "native"


def test_the_loop_is_refused_while_a_move_task_runs(run: Any, platform: Platform, client_hooks: Any) -> None:
    _fill_dlq(platform, 5)
    tasks = _MoveTasks(platform, running=True)
    client_hooks(tasks.register)
    result = run("redrive", "--mode", "loop", *LOOP)
    assert result.exit_code == 1
    assert "a message-move task is RUNNING" in result.stderr
    assert tasks.calls["receive"] == 0


def test_max_counts_sends_and_the_loop_stops_at_the_first_failed_delete(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    _fill_dlq(platform, 12)

    def register(client: Any) -> None:
        if client.meta.service_model.service_name != "sqs":
            return

        def fail_deletes(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            entries = params["Entries"] if "Entries" in params else json.loads(params["body"])["Entries"]
            failed = [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"}
                for e in entries
            ]
            return AWSResponse("https://sqs", 200, HTTPHeaders(), None), {"Successful": [], "Failed": failed}

        client.meta.events.register("before-call.sqs.DeleteMessageBatch", fail_deletes)

    client_hooks(register)
    result = run("redrive", *LOOP, "--max", "5", "--visibility-timeout", "30", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["moved"], summary["failed_deletes"]) == (5, 0, 5)
    assert platform.queue_counts(platform.failed_url) == (5, 0)  # not all 12


# -- issue 22, item 7: dry runs honour --max; redrives are counted and poison messages parked ------
def test_a_dry_run_honours_max(run: Any, platform: Platform) -> None:
    _fill_dlq(platform, 6)
    result = run("redrive", "--max", "1", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["would_move"] == 1 and summary["moved"] == 0
    assert summary["before"]["dlq"]["visible"] == 6
    table = run("redrive", "--max", "1", "--dry-run")
    assert "would move 1 message(s)" in table.stdout and "--max 1" in table.stdout
    assert "would move 6" not in table.stdout
    assert platform.queue_counts(platform.dlq_url) == (6, 0)


def _dead_letter(platform: Platform) -> None:
    """Fail every message of the source queue past maxReceiveCount (3): SQS moves it to the DLQ."""
    for _ in range(4):
        platform.sqs.receive_message(
            QueueUrl=platform.failed_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )


def test_a_poison_message_is_parked_after_max_redrives_with_a_clear_report(
    run: Any, platform: Platform
) -> None:
    platform.sqs.send_message(
        QueueUrl=platform.failed_url,
        MessageBody=json.dumps({"transaction_id": "txn_poison", "error": "boom"}),
    )
    _dead_letter(platform)
    for round_ in (1, 2):  # redriven, fails again, back in the DLQ: counted on the message
        result = run("redrive", *LOOP, "--max-redrives", "2", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["moved"] == 1
        (message,) = platform.sqs.receive_message(
            QueueUrl=platform.failed_url, MessageAttributeNames=["All"], VisibilityTimeout=0
        )["Messages"]
        assert message["MessageAttributes"]["redrive_count"]["StringValue"] == str(round_)
        _dead_letter(platform)
    assert platform.queue_counts(platform.dlq_url) == (1, 0)

    parked = run("redrive", *LOOP, "--max-redrives", "2", "--json")
    assert parked.exit_code == 0, parked.output
    summary = json.loads(parked.stdout)
    assert summary["moved"] == 0 and summary["max_redrives"] == 2
    (entry,) = summary["parked"]
    assert entry["transaction_id"] == "txn_poison" and entry["redrives"] == 2
    assert "redriven 2 time(s) already (limit 2)" in entry["reason"]
    # Parked in the DLQ, visible again at once for whoever looks next; nothing sent.
    assert platform.queue_counts(platform.dlq_url) == (1, 0)
    assert platform.queue_counts(platform.failed_url) == (0, 0)

    table = run("redrive", *LOOP, "--max-redrives", "2")
    assert "Parked in failed-transactions-dlq-test" in table.stdout and "txn_poison" in table.stdout
    assert "parked 1 message(s) in the DLQ" in table.stderr
    # A higher limit lets it go round once more.
    again = run("redrive", *LOOP, "--max-redrives", "3", "--json")
    assert json.loads(again.stdout)["moved"] == 1


def test_parking_leaves_the_other_messages_moving(platform: Platform) -> None:
    _fill_dlq(platform, 12)
    poison = {"DataType": "Number", "StringValue": "5"}
    full = {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(10)}
    platform.sqs.send_message(
        QueueUrl=platform.dlq_url, MessageBody="poison", MessageAttributes={"redrive_count": poison}
    )
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody="no room", MessageAttributes=full)
    result = redrive(platform.sqs, platform.dlq_url, mode="loop", wait_s=0, max_redrives=3)
    assert result.moved == 12 and result.ok
    reasons = sorted(p["reason"] for p in result.parked.values())
    assert reasons == [
        "no room for the redrive_count attribute (10 attributes already)",
        "redriven 5 time(s) already (limit 3)",
    ]
    assert platform.queue_counts(platform.dlq_url) == (2, 0)


def test_a_native_task_cannot_count_so_it_needs_no_limit(run: Any, platform: Platform) -> None:
    _fill_dlq(platform, 1)
    result = run("redrive", "--mode", "native")
    assert result.exit_code == 1
    assert "cannot count redrives" in result.stderr and "--max-redrives 0" in result.stderr
