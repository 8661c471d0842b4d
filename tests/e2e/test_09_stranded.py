"""Flow 9: a workflow step that hangs never leaves a transaction non-terminal.

Two transactions meet a processor that accepts the connection and never answers (a silent TLS
peer on 127.0.0.1: each charge attempt hangs until the client's time-out):

- the first runs the deployed definition to its end: Settle's attempts time out, the retries are
  spent, the Catch runs RecordFailure (FAILED, failed-transactions);
- the second runs under an execution budget shorter than its steps' worst case (the deployed
  definition with TimeoutSeconds = 15, set through UpdateStateMachine for that one execution and
  restored at once: what the old 60 s budget did to any slow step). The execution times out
  mid-step (TIMED_OUT, uncatchable), nothing in the definition records the failure and the
  transaction stays non-terminal. The safety-net rule is what brings it back.

Neither moto nor LocalStack (free) delivers Step Functions status-change events to EventBridge, so
after asserting the deployed rule (pattern, target, transformer, queue and key policies) the test
builds the event AWS would send for each finished execution (the shape of AWS's sample "Step
Functions Execution Status Change" event, values from DescribeExecution), checks the deployed
pattern matches it, renders the deployed input transformer and sends the result to
failed-transactions, as EventBridge would. Then the retry consumer leaves both FAILED, they land in
the DLQ while the processor hangs, and a redrive completes them.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from devkit.demo import FlowError, Platform, wait_for
from tests.e2e.flows import OpsCli
from tests.emulator_gaps import supports

STRANDED_STATUSES = {"FAILED", "TIMED_OUT", "ABORTED"}
NON_TERMINAL = {"PENDING", "VALIDATING", "SETTLING"}
SERVER_LIFETIME_S = 600.0
SHORT_BUDGET_S = 15


class SilentProcessor:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (bounded in time and count)."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.5)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1/charges"

    def _serve(self) -> None:
        deadline = time.monotonic() + SERVER_LIFETIME_S
        while not self.stopped.is_set() and time.monotonic() < deadline and self.accepted < 1000:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def __enter__(self) -> SilentProcessor:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            with contextlib.suppress(OSError):
                conn.close()
        self.listener.close()


def _rule_name(platform: Platform) -> str:
    return f"payment-workflow-stranded-{platform.outputs['environment_suffix']}"


def _target(platform: Platform) -> dict[str, Any]:
    targets = platform.client("events").list_targets_by_rule(Rule=_rule_name(platform))["Targets"]
    assert len(targets) == 1, targets
    return dict(targets[0])


def _matches(pattern: Any, event: Any) -> bool:
    """EventBridge matching for the pattern shapes the rule uses (exact values, nested objects)."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            k in event and _matches(v, event[k]) for k, v in pattern.items()
        )
    return event in pattern


def _status_change_event(platform: Platform, execution: dict[str, Any]) -> dict[str, Any]:
    """The event Step Functions sends to the default bus when an execution ends (AWS's sample
    "Step Functions Execution Status Change" event, with this execution's values)."""
    start: datetime = execution["startDate"]
    # AWS always sets stopDate on a finished execution; moto leaves it out for some statuses.
    stop: datetime = execution.get("stopDate") or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": str(platform.outputs["account_id"]),
        "time": stop.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": platform.region,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": int(start.timestamp() * 1000),
            "stopDate": int(stop.timestamp() * 1000),
            "input": execution.get("input"),
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
        },
    }


def _render(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """EventBridge's input transformer: ``<name>`` outside quotes becomes the JSON value at its path."""

    def at(path: str) -> Any:
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        return value

    values = {name: json.dumps(at(path)) for name, path in transformer["InputPathsMap"].items()}
    return re.sub(r"<([A-Za-z0-9_.]+)>", lambda m: values[m.group(1)], transformer["InputTemplate"])


def _deliver(platform: Platform, execution: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge does for the deployed rule and target, for this finished execution."""
    rule = platform.client("events").describe_rule(Name=_rule_name(platform))
    event = _status_change_event(platform, execution)
    assert _matches(json.loads(rule["EventPattern"]), event), (rule["EventPattern"], event)
    target = _target(platform)
    body = _render(target["InputTransformer"], event)
    queue_url = platform.client("sqs").get_queue_url(QueueName=target["Arn"].rsplit(":", 1)[1])["QueueUrl"]
    platform.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)
    message: dict[str, Any] = json.loads(body)
    return message


@contextlib.contextmanager
def _execution_budget(platform: Platform, seconds: int) -> Iterator[None]:
    """Executions started inside run the deployed definition with another TimeoutSeconds (an
    execution snapshots its definition at start); the deployed definition is back on exit."""
    sfn = platform.client("stepfunctions")
    arn = platform.outputs["state_machine_arn"]
    original = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    shortened = json.loads(original)
    shortened["TimeoutSeconds"] = seconds
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(shortened))
    try:
        yield
    finally:
        sfn.update_state_machine(stateMachineArn=arn, definition=original)


@contextlib.contextmanager
def _processor(platform: Platform, endpoint: str) -> Iterator[None]:
    original = platform.processor_endpoint()
    platform.set_processor_endpoint(endpoint)
    try:
        yield
    finally:
        platform.set_processor_endpoint(original)


def test_safety_net_rule_is_deployed_with_its_permissions(platform: Platform) -> None:
    events = platform.client("events")
    rule = events.describe_rule(Name=_rule_name(platform))
    assert rule.get("State", "ENABLED") == "ENABLED"
    pattern = json.loads(rule["EventPattern"])
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["stateMachineArn"] == [platform.outputs["state_machine_arn"]]
    assert set(pattern["detail"]["status"]) == STRANDED_STATUSES
    target = _target(platform)
    assert target["Arn"] == platform.outputs["failed_queue_arn"]
    assert target["InputTransformer"]["InputPathsMap"]["name"] == "$.detail.name"

    policy = json.loads(
        platform.client("sqs").get_queue_attributes(
            QueueUrl=platform.outputs["failed_queue_url"], AttributeNames=["Policy"]
        )["Attributes"]["Policy"]
    )
    send = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert len(send) == 1 and send[0]["Effect"] == "Allow"
    assert send[0]["Condition"]["ArnEquals"]["aws:SourceArn"] == rule["Arn"]

    key_policy = json.loads(
        platform.client("kms").get_key_policy(
            KeyId=platform.outputs["kms_key_arns"]["messaging"], PolicyName="default"
        )["Policy"]
    )
    use = [s for s in key_policy["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert len(use) == 1 and use[0]["Condition"]["ArnEquals"]["aws:SourceArn"] == rule["Arn"]


def test_hanging_settlement_leaves_no_transaction_stranded(platform: Platform, ops_cli: OpsCli) -> None:
    sfn = platform.client("stepfunctions")
    with contextlib.ExitStack() as stack:
        silent = stack.enter_context(SilentProcessor())
        # Restored on exit, before the redrive below.
        stack.enter_context(_processor(platform, silent.endpoint))
        stack.enter_context(platform.fast_retries())

        # The first one runs under the deployed budget.
        response = platform.create(Platform.payment("41.00", "USD"))
        assert response.status == 202, response.body
        failed_id = response.json["transaction_id"]
        # The second one under a budget its hanging step cannot meet.
        with _execution_budget(platform, SHORT_BUDGET_S):
            response = platform.create(Platform.payment("42.00", "USD"))
        assert response.status == 202, response.body
        stranded_id = response.json["transaction_id"]
        deployed = json.loads(
            sfn.describe_state_machine(stateMachineArn=platform.outputs["state_machine_arn"])["definition"]
        )
        assert deployed["TimeoutSeconds"] > SHORT_BUDGET_S, "the deployed budget is back"

        timed_out = platform.wait_for_execution(stranded_id, timeout=120)
        assert timed_out["status"] == "TIMED_OUT", timed_out
        # Without the safety net this is where it stays: the execution-level time-out cannot be
        # caught, so RecordFailure never ran (the step in flight may still finish its attempt).
        time.sleep(12)  # longer than one hanging attempt (charge + look-up, 5 s each)
        item = platform.item(stranded_id)
        # Where EventBridge delivers Step Functions status events (LocalStack, as AWS), the real
        # safety net may already have handed it to the retry consumer, which leaves it FAILED.
        allowed = NON_TERMINAL | ({"FAILED"} if supports("events:stepfunctions-status-events") else set())
        assert item is not None and item["status"] in allowed, item
        history = sfn.get_execution_history(executionArn=timed_out["executionArn"], maxResults=1000)["events"]
        assert not any(
            e.get("stateEnteredEventDetails", {}).get("name") == "RecordFailure" for e in history
        ), "RecordFailure ran"

        # The first one runs the definition to its end: Settle's attempts time out, then the Catch.
        finished = platform.wait_for_execution(failed_id, timeout=180)
        assert finished["status"] == "FAILED", finished
        history = sfn.get_execution_history(executionArn=finished["executionArn"], maxResults=1000)["events"]
        assert sum(e["type"] == "TaskFailed" for e in history) >= 4, "Settle and its 3 retries"
        # RecordFailure failed attempt 1, unless a Settle invocation that outlived its task time-out
        # still held the lease: a live lease is never failed (the safety net and the sweeper take
        # it over once it expires).
        assert (platform.item(failed_id) or {}).get("status") in {"FAILED", "SETTLING"}

        # EventBridge's part: the executions ended FAILED / TIMED_OUT; the first message repeats the
        # one RecordFailure already sent (harmless: the consumer resumes a FAILED transaction).
        for transaction_id in (failed_id, stranded_id):
            execution = sfn.describe_execution(executionArn=platform.execution_arn(transaction_id))
            message = _deliver(platform, execution)
            assert message["transaction_id"] == transaction_id
            assert message["execution_status"] == execution["status"]

        # While the processor hangs, the retry consumer fails each attempt and leaves the
        # transaction FAILED; after its receives the messages land in the DLQ.
        # The first transaction has two messages there (RecordFailure's and the event's). Overlapping
        # deliveries (visible again every 2 s, an attempt hangs about 10 s) can leave an attempt
        # holding SETTLING after the last message left: wait_dead_lettered waits it out.
        for item in platform.wait_dead_lettered((failed_id, stranded_id), timeout=500):  # five receives
            assert item.get("failure"), item
        assert silent.accepted >= 6, f"the processor was called {silent.accepted} times"

    # The processor is back: a redrive finishes both.
    result = ops_cli("redrive", "--mode", "loop", "--wait-seconds", "0", "--json")
    assert result.exit_code == 0, result.output
    for transaction_id in (failed_id, stranded_id):
        try:
            final = platform.wait_for_status(transaction_id, {"COMPLETED"}, timeout=180)
        except FlowError as exc:
            raise AssertionError(f"{exc}; stored: {platform.item(transaction_id)}") from exc
        assert final["status"] == "COMPLETED"
        audit = [entry["to_status"] for entry in platform.audit(transaction_id)]
        assert "FAILED" in audit and audit[-1] == "COMPLETED", audit
    wait_for(
        lambda: platform.queue_counts(platform.outputs["failed_queue_url"]) == (0, 0),
        timeout=60,
        what="failed-transactions to drain",
    )
    assert not {failed_id, stranded_id} & platform.dlq_transaction_ids()
