"""A model of the platform's runtime for adversarial interleavings (tests/unit/test_settlement_model.py).

Every actor AWS would run concurrently (the client's POST, Step Functions executions and each of
their task invocations, retry-consumer deliveries, the sweeper) is a thread running the real domain
code (``payments.intake``, ``payments.steps``, ``payments.settle``, ``payments.recovery``) against
the moto tables, queues and topics, and the processor simulator (``devkit.emulator.processor.Ledger``).
The threads never run at the same time: each stops before every AWS or processor call (a
*checkpoint*) and the scheduler decides which one goes next and whether that call meets a fault:

- ``throttle``: the call is refused before it happens (AWS throttling);
- ``lost``: the call happens but its answer is lost (a time-out after the write / after the charge);
- ``crash_before``: the Lambda dies before the request leaves (nothing happens server-side) and
  ``crash``: it dies right after the call (time-out, OOM); either way no ``except`` or ``finally``
  of ours runs, and what the actor was doing is for the automatic actors to finish;
- the processor's answers (``ModelProcessor``): ``refused`` (unreachable, nothing sent),
  ``http400`` (the request refused, nothing charged; the processor refuses it again until the
  idempotency key it would replay exists), ``http429`` and ``http5xx`` (nothing done), ``http409``
  and ``error_after`` (acted, then answered 409 / 500), and ``stale`` (a lookup that does not yet
  see a charge made in the last ``STALE_LOOKUP_S``, at most ``STALE_LOOKUPS`` times per charge);
- at a Step Functions task: ``timeout`` (the state machine retries the task while the first
  invocation keeps running) and ``abort`` (the execution times out: EventBridge's safety net sends
  the transaction to the failed queue).

SQS is modelled at the level the code sees it: each delivery is a retry-consumer invocation; a
message can be delivered again while in flight (visibility expiry), returns after a failure, and
moves to the DLQ after five receives (MAX_RECEIVES); ``redrive`` moves the DLQ back. A delivery is one
invocation of the real retry handler (``payments.handlers.retry.handler``) with a batch of messages
in an SQS event, whose ``batchItemFailures`` decide which messages are deleted and which are received
again (a crashed invocation returns the whole batch). Time is a fake clock the scheduler advances
(lease expiry, the sweeper's budget, the processor's 24 h key retention).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from payments import config, validation
from payments.clock import Clock as ActorClock
from payments.handlers import retry as retry_handler
from payments.intake import create_transaction
from payments.recovery import sweep
from payments.service import Services
from payments.settle import settle_step
from payments.steps import failure_step, fraud_step, outcome_step, reject_step, validate_step
from payments.store.repository import Repository

from devkit.emulator.processor import Ledger
from tests.unit import awsenv

ENDPOINT = "https://processor.model.test/v1/charges"
CREDENTIAL = "model-credential"
TASK_ATTEMPTS = 3  # Step Functions: the first invocation and two retries
MAX_RECEIVES = 5  # failed-transactions maxReceiveCount (modules/messaging: AWS advises >= 5 for Lambda)
MIN_SETTLEMENT_ATTEMPTS = 16
RETRY_BATCH_SIZE = 10  # modules/functions: retry_batch_size (default)
RETRY_TIMEOUT_MS = 60_000  # modules/functions: the retry function's timeout
CLIENT_PATIENCE_MS = 3600 * 1000  # well inside the 24 h an Idempotency-Key is kept
# Schedules started in this process: the two halves of the model test are two test modules (each
# with its own figures), and a failure names its schedule's ordinal in the whole run.
SCHEDULE_ORDINALS = itertools.count(1)


class ActorCrashed(BaseException):
    """The Lambda invocation died (time-out, kill): no exception handler of ours runs."""


class ModelAbort(BaseException):
    """Tear-down: release a thread still parked at a checkpoint."""


@dataclass
class Clock:
    """Fake epoch milliseconds; every read moves it 1 ms so that events stay ordered."""

    now: int

    def ms(self) -> int:
        self.now += 1
        return self.now

    def seconds(self) -> float:
        return self.now / 1000


@dataclass
class Actor:
    name: str
    body: Callable[[], Any]
    kind: str
    thread: threading.Thread | None = None
    pending: str | None = None
    fault: str | None = None
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    awaiting: Actor | None = None
    skew_ms: int = 0  # this invocation's clock offset (its host's clock is off)
    caught: list[Exception] = field(default_factory=list)  # what the retry handler caught and reported
    go: threading.Event = field(default_factory=threading.Event)


class Scheduler:
    """Runs one actor at a time; the caller picks who moves and which fault the next call meets."""

    def __init__(self) -> None:
        self.actors: list[Actor] = []
        self.local = threading.local()
        self.back = threading.Event()
        self.aborting = False
        self.free_running = False  # quiescence: no faults, so an actor need not stop at every call
        self.log: list[str] = []
        # Directed faults: (site, kind, n) meets the n-th call at ``site`` (1-based) with ``kind``,
        # whoever makes it, in the chaos steps or in quiescence (a free-running actor too).
        self.forced: list[tuple[str, str, int]] = []
        self.directed_now: str | None = None  # the directed fault the last call met
        self.calls: Counter[str] = Counter()  # calls made per site
        self.hits: Counter[tuple[str, str]] = Counter()  # faults met per (site, kind)
        self.skews: Callable[[], int] | None = None  # draws each new actor's clock offset (ms)
        # The faults quiescence still meets (what a schedule left of its processor and rare-site faults).
        self.calm: Callable[[str], str | None] | None = None

    # -- main thread ----------------------------------------------------------------------------
    def spawn(self, name: str, body: Callable[[], Any], kind: str) -> Actor:
        actor = Actor(f"{name}#{len(self.actors)}", body, kind)
        if self.skews is not None:
            actor.skew_ms = self.skews()
        self.actors.append(actor)
        return actor

    def live(self) -> list[Actor]:
        return [a for a in self.actors if not a.done]

    def ready(self, allow_timeouts: bool) -> list[Actor]:
        out = []
        for actor in self.live():
            waiting_on = actor.awaiting
            if waiting_on is not None and not waiting_on.done and not allow_timeouts:
                continue
            out.append(actor)
        return out

    def step(self, actor: Actor, fault: str | None = None) -> None:
        self.log.append(f"{actor.name} @ {actor.pending or 'start'}" + (f" !{fault}" if fault else ""))
        actor.fault = fault
        self.back.clear()
        if actor.thread is None:
            actor.thread = threading.Thread(target=self._run, args=(actor,), name=actor.name, daemon=True)
            actor.thread.start()
        else:
            actor.go.set()
        if not self.back.wait(timeout=60):
            raise RuntimeError(f"actor {actor.name} did not yield")

    def close(self) -> None:
        self.aborting = True
        for actor in self.live():
            if actor.thread is not None:
                self.back.clear()
                actor.go.set()
                self.back.wait(timeout=5)

    # -- actor threads --------------------------------------------------------------------------
    def _run(self, actor: Actor) -> None:
        self.local.actor = actor
        try:
            actor.result = actor.body()
        except BaseException as exc:  # recorded for the model; the thread ends either way
            actor.error = exc
        finally:
            actor.done = True
            actor.pending = None
            self.back.set()

    def current(self) -> Actor | None:
        """The actor whose thread calls (None on the main thread)."""
        actor: Actor | None = getattr(self.local, "actor", None)
        return actor

    def skew(self) -> int:
        """The calling actor's clock offset (0 on the main thread)."""
        actor = self.current()
        return actor.skew_ms if actor is not None else 0

    def checkpoint(self, op: str) -> str | None:
        actor: Actor | None = getattr(self.local, "actor", None)
        if actor is None:
            return None  # the main thread (set-up, assertions): no faults
        if self.free_running and not op.startswith("await "):
            return self._met(op, self.calm(op) if self.calm is not None else None)
        actor.pending = op
        actor.go.clear()
        self.back.set()
        actor.go.wait()
        if self.aborting:
            raise ModelAbort()
        fault, actor.fault = actor.fault, None
        return self._met(op, fault)

    def _met(self, op: str, fault: str | None) -> str | None:
        """Count the call at its site; a directed fault due at this call replaces ``fault``."""
        site = site_of(op)
        self.calls[site] += 1
        self.directed_now = None
        for entry in self.forced:
            if entry[0] == site and entry[2] == self.calls[site]:
                self.forced.remove(entry)
                fault = self.directed_now = entry[1]
                self.log.append(f"  directed: {site} call {entry[2]} !{fault}")
                break
        if fault is not None:
            self.hits[(site, fault)] += 1
        return fault

    def void(self, site: str, kind: str) -> None:
        """The fault met at ``site`` could not act (nothing for it to hide): not counted as met; a
        directed one is due again at the site's next call."""
        self.hits[(site, kind)] -= 1
        self.log.append(f"  {site} !{kind}: nothing to act on")
        if self.directed_now == kind:
            self.forced.append((site, kind, self.calls[site] + 1))

    def await_actor(self, task: Actor) -> str | None:
        """Wait for ``task``; returns None when it finished, or the fault that ended the wait."""
        actor: Actor = self.local.actor
        actor.awaiting = task
        try:
            while True:
                fault = self.checkpoint(f"await {task.name}")
                if fault in ("timeout", "abort"):
                    return fault
                if task.done:
                    return None
        finally:
            actor.awaiting = None


def site_of(op: str) -> str:
    """The call site a checkpoint names: ``service.operation``, ``processor.METHOD`` or ``await``."""
    return "await" if op.startswith("await ") else op


class Recorded:
    """SNS as published: every ``publish`` that reached SNS, in order (a lost answer included)."""

    def __init__(self, client: Any, published: list[dict[str, Any]]) -> None:
        self._client = client
        self._published = published

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != "publish":
            return attr

        def publish(**kwargs: Any) -> Any:
            result = attr(**kwargs)
            attributes = {k: v["StringValue"] for k, v in kwargs.get("MessageAttributes", {}).items()}
            self._published.append(
                {**attributes, "transaction_id": json.loads(kwargs["Message"]).get("transaction_id")}
            )
            return result

        return publish


class Faulty:
    """An AWS client whose calls stop at a checkpoint and meet the fault the scheduler chose."""

    def __init__(self, scheduler: Scheduler, client: Any, service: str) -> None:
        self._scheduler = scheduler
        self._client = client
        self._service = service

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            fault = self._scheduler.checkpoint(f"{self._service}.{name}")
            if fault == "crash_before":
                raise ActorCrashed(f"before {self._service}.{name}")
            if fault == "throttle":
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "model"}}, name)
            result = attr(*args, **kwargs)
            if fault == "lost":
                raise ReadTimeoutError(endpoint_url=f"https://{self._service}.model")
            if fault == "crash":
                raise ActorCrashed(f"{self._service}.{name}")
            return result

        return call


_MESSAGE_IDS = itertools.count(1)


@dataclass
class Message:
    body: dict[str, Any]
    receives: int = 0
    in_flight: int = 0
    message_id: str = field(default_factory=lambda: f"msg-{next(_MESSAGE_IDS)}")

    def record(self) -> dict[str, Any]:
        """The message as an SQS event record (what the retry handler reads)."""
        return {
            "messageId": self.message_id,
            "receiptHandle": f"rh-{self.message_id}-{self.receives}",
            "body": json.dumps(self.body),
            "attributes": {"ApproximateReceiveCount": str(self.receives + 1)},
            "eventSource": "aws:sqs",
        }


class RetryContext:
    """The retry function's Lambda context: its time-out counts from the first time the handler
    asks (when the invocation starts running), on the platform's true clock."""

    aws_request_id = "model-retry"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._started: int | None = None

    def get_remaining_time_in_millis(self) -> int:
        if self._started is None:
            self._started = self._clock.now
        return max(0, RETRY_TIMEOUT_MS - (self._clock.now - self._started))


@dataclass
class Platform:
    """The moto environment, the processor ledger, and the actors that drive transactions."""

    aws: awsenv.AwsEnv
    scheduler: Scheduler
    clock: Clock
    ledger: Ledger
    services: Services
    queue: list[Message] = field(default_factory=list)
    dlq: list[Message] = field(default_factory=list)
    deliveries: dict[str, list[Message]] = field(default_factory=dict)  # retry invocation -> its batch
    metrics: Counter[str] = field(default_factory=Counter)  # what the retry handler counted
    payments: dict[str, str] = field(default_factory=dict)  # idempotency key -> token
    client_attempts: dict[str, int] = field(default_factory=dict)
    safety_net_messages: int = 0
    day_passed: bool = False
    unattended: bool = False  # no operator in this schedule (no DLQ redrive at all)
    calm_requeues: int = 0  # FAILED payments the sweeper re-enqueued during quiescence
    operator: bool = False  # the schedule drew a DLQ redrive: the operator is around in quiescence
    published: list[dict[str, Any]] = field(default_factory=list)  # SNS publishes, in order
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # key -> index rows seen
    _merchants: dict[str, str] = field(default_factory=dict)
    _amounts: dict[str, str] = field(default_factory=dict)
    _first_attempt: dict[str, int] = field(default_factory=dict)

    # -- actors ---------------------------------------------------------------------------------
    def client(self, key: str, token: str, merchant: str, amount: str = "42.00") -> Actor:
        """The API client's POST /transactions (intake), retried by the client with the same key."""
        self._merchants[key] = merchant
        self.payments[key] = token
        self._amounts[key] = amount
        self.client_attempts[key] = self.client_attempts.get(key, 0) + 1
        document = awsenv.payment(
            merchant_id=merchant,
            customer_id=f"cust_{key}",
            amount=amount,
            payment_method={"type": "card", "token": token},
        )
        request = validation.validate_document(json.loads(json.dumps(document)))
        first = self._first_attempt.setdefault(key, self.clock.now)

        def post() -> Any:
            if self.clock.now - first > CLIENT_PATIENCE_MS:
                return None  # a client retries for minutes, not for a day: the key may have expired
            return create_transaction(self.services, request, key, awsenv.API_KEY_ID)

        return self.scheduler.spawn(f"client-{key}", post, "client")

    def start_execution(self, transaction_id: str, timestamp: int) -> None:
        self.scheduler.spawn(
            f"workflow-{transaction_id[-4:]}", lambda: self._workflow(transaction_id, timestamp), "workflow"
        )

    def _task(self, name: str, body: Callable[[], Any]) -> Any:
        """One Step Functions task state: invocations, retries, and Catch (raises TaskFailed)."""
        error: Mapping[str, Any] = {"Error": "States.TaskFailed"}
        for _ in range(TASK_ATTEMPTS):
            invocation = self.scheduler.spawn(name, body, "task")
            fault = self.scheduler.await_actor(invocation)
            if fault == "abort":
                raise ExecutionAborted()
            if fault == "timeout":
                error = {"Error": "States.Timeout"}
                continue
            if invocation.error is None:
                return invocation.result
            crashed = isinstance(invocation.error, ActorCrashed)
            error = {
                "Error": "Lambda.Unknown" if crashed else type(invocation.error).__name__,
                "Cause": str(invocation.error),
            }
        raise TaskFailed(error)

    def _workflow(self, transaction_id: str, timestamp: int) -> str:
        s = self.services
        try:
            try:
                checks = [
                    self._task("Validate", lambda: validate_step(s, transaction_id, timestamp)),
                    self._task("FraudCheck", lambda: fraud_step(s, transaction_id, timestamp)),
                ]
                if not checks[0]["valid"] or checks[1]["decision"] == "REJECT":
                    self._task("Reject", lambda: reject_step(s, transaction_id, timestamp))
                    return "SUCCEEDED"
                self._task("Settle", lambda: settle_step(s, transaction_id, timestamp))
                self._task("Notify", lambda: outcome_step(s, transaction_id, timestamp))
                return "SUCCEEDED"
            except TaskFailed as caught:
                error = caught.error
                self._task("RecordFailure", lambda: failure_step(s, transaction_id, timestamp, error))
                # The definition ends in Fail after RecordFailure: the safety net fires as well.
                self._safety_net(transaction_id, "FAILED")
                return "FAILED"
        except TaskFailed:
            self._safety_net(transaction_id, "FAILED")
            return "FAILED"
        except ExecutionAborted:
            self._safety_net(transaction_id, "TIMED_OUT")
            return "TIMED_OUT"

    def _safety_net(self, transaction_id: str, status: str) -> None:
        """EventBridge: execution status change → failed-transactions (the documented message body)."""
        self.safety_net_messages += 1
        self.queue.append(
            Message(
                {
                    "transaction_id": transaction_id,
                    "source": "workflow-safety-net",
                    "execution_status": status,
                    "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:wf:{transaction_id}",
                    "failed_at": "2026-11-29T15:00:00Z",
                }
            )
        )

    def deliver(self, batch: Message | list[Message]) -> Actor:
        """One invocation of the retry handler (``payments.handlers.retry``) with ``batch`` in an
        SQS event, as the event source mapping sends it; ``reap`` applies its partial batch answer."""
        messages = [batch] if isinstance(batch, Message) else list(batch)
        event = {"Records": [m.record() for m in messages]}
        context = RetryContext(self.clock)
        actor = self.scheduler.spawn("retry", lambda: retry_handler.handler(event, context), "retry")
        for message in messages:
            message.in_flight += 1
        self.deliveries[actor.name] = messages
        return actor

    def deliver_all(self, messages: list[Message], batch_size: int = RETRY_BATCH_SIZE) -> list[Actor]:
        """Every message in batches of ``batch_size`` (one invocation each)."""
        return [self.deliver(messages[i : i + batch_size]) for i in range(0, len(messages), batch_size)]

    def sweeper(self) -> Actor:
        return self.scheduler.spawn("sweeper", lambda: sweep(self.services), "sweeper")

    # -- SQS bookkeeping ------------------------------------------------------------------------
    def pull_failed_queue(self) -> None:
        for raw in self.aws.drain(self.aws.n["FAILED_QUEUE_URL"]):
            self.queue.append(Message(json.loads(raw["Body"])))

    def reap(self) -> None:
        """Settle finished deliveries: delete on success, count a receive (then DLQ) on failure.
        A client whose POST failed (5xx, time-out) sends it again with the same Idempotency-Key."""
        for actor in [
            a for a in self.scheduler.actors if a.done and a.kind == "client" and a.error is not None
        ]:
            actor.kind = "client-failed"
            key = actor.name.split("#")[0].removeprefix("client-")
            if self.client_attempts[key] < 6:
                self.client(key, self.payments[key], self._merchants[key], self._amounts[key])
        for actor in [a for a in self.scheduler.actors if a.done and a.name in self.deliveries]:
            # A crashed invocation answered nothing: its whole batch is received again.
            answer = actor.result if actor.error is None else None
            returned = (
                {str(f["itemIdentifier"]) for f in answer["batchItemFailures"]}
                if isinstance(answer, Mapping)
                else None
            )
            for message in self.deliveries.pop(actor.name):
                message.in_flight -= 1
                if message not in self.queue:
                    continue  # already deleted by another delivery's success
                if returned is not None and message.message_id not in returned:
                    self.queue.remove(message)
                    continue
                message.receives += 1
                if message.receives >= MAX_RECEIVES and message.in_flight == 0:
                    self.queue.remove(message)
                    self.dlq.append(message)

    def outage(self, rounds: int) -> None:
        """The processor is down (every call refused): what is in motion meets it (a workflow's
        Settle fails, RecordFailure queues the retry), then the retry consumer works through the
        failed queue for ``rounds`` visibility time-outs: each delivery fails its attempt, and a
        message received ``MAX_RECEIVES`` times is dead-lettered."""
        lease_ms = (self.services.settings.settlement_lease_seconds + 1) * 1000

        def refused(op: str) -> str | None:
            return "refused" if op.startswith("processor.") else None

        for _ in range(100):  # what is in motion, and what it starts (a client's workflow)
            if not self.scheduler.live():
                break
            for actor in list(self.scheduler.live()):
                run_to_completion(self, actor, refused)
        for _ in range(rounds):
            self.reap()
            self.clock.now += lease_ms
            self.pull_failed_queue()
            for delivery in self.deliver_all(self.available()):
                run_to_completion(self, delivery, refused)
        self.reap()

    def available(self) -> list[Message]:
        return [m for m in self.queue if m.in_flight == 0]

    def redrive(self) -> None:
        for message in self.dlq:
            message.receives = 0
            self.queue.append(message)
        self.dlq.clear()


class TaskFailed(Exception):
    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(str(error.get("Error")))
        self.error = dict(error)


class ExecutionAborted(Exception):
    """The execution timed out or was aborted: no Catch runs."""


class ModelSfn:
    """StartExecution: EXPRESS workflows do not de-duplicate by name, so a repeat starts another."""

    def __init__(self, platform_ref: Callable[[], Platform], scheduler: Scheduler) -> None:
        self._platform = platform_ref
        self._scheduler = scheduler

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        fault = self._scheduler.checkpoint("sfn.start_execution")
        if fault == "crash_before":
            raise ActorCrashed("before sfn.start_execution")
        if fault == "throttle":
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "model"}}, "StartExecution"
            )
        document = json.loads(kwargs["input"])
        starts = 2 if fault == "duplicate" else 1
        for _ in range(starts):
            self._platform().start_execution(document["transaction_id"], int(document["timestamp"]))
        if fault == "lost":
            raise ReadTimeoutError(endpoint_url="https://states.model")
        if fault == "crash":
            raise ActorCrashed("sfn.start_execution")
        return {"executionArn": f"arn:aws:states:::execution:{kwargs['name']}"}


# How long the processor's lookups may lag a charge, and how many lookups may miss it: far inside
# its 24 h key retention, so a charge sent again after a miss is still answered from its key.
STALE_LOOKUP_S = 60
STALE_LOOKUPS = 2


def _reference(method: str, url: str, body: bytes | None) -> str:
    """The transaction a processor request is about (the POST body's reference, the GET's query)."""
    if method == "GET":
        return parse_qs(urlsplit(url).query).get("reference", [""])[0]
    return str(json.loads(body or b"{}").get("reference") or "")


# Answers the processor gives without acting (nothing charged, nothing looked up).
UNAVAILABLE: dict[str, tuple[int, bytes]] = {
    "http429": (429, b'{"error": "rate_limited"}'),  # "not now"
    "http5xx": (503, b'{"error": {"type": "api_error", "message": "try again"}}'),
}
ACCOUNT_CLOSED = (400, b'{"error": "invalid_request", "code": "account_closed"}')
LOOKUP_REFUSED = (400, b'{"error": {"type": "invalid_request_error"}}')
NOT_YET_VISIBLE = (404, b'{"error": {"type": "resource_missing"}}')


class ModelProcessor:
    """The processor as the settlement reaches it (``transport``), each call meeting the fault the
    scheduler drew.

    A refused request (``http400``: a closed account) stays refused: the processor answers every
    later charge for that payment with 400 too, unless it holds the idempotency key and replays the
    stored answer (a charge within its key retention). A ``stale`` lookup misses a charge made in
    the last ``STALE_LOOKUP_S``, at most ``STALE_LOOKUPS`` times per charge; a fault that cannot act
    (no such charge, a replayed key) is answered as the processor would and not counted as met."""

    def __init__(self, scheduler: Scheduler, ledger: Ledger) -> None:
        self.scheduler = scheduler
        self.ledger = ledger
        self.refused: set[str] = set()  # payments whose charge the processor refuses
        self.missed: Counter[str] = Counter()  # stale lookups served per charge

    def transport(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        site = f"processor.{method}"
        fault = self.scheduler.checkpoint(site)
        if fault == "crash_before":
            raise ActorCrashed(f"before {site}")
        if fault == "refused":
            raise ConnectionRefusedError("model: processor unreachable")
        if fault in UNAVAILABLE:
            return UNAVAILABLE[fault]
        reference = _reference(method, url, body)
        if method == "GET":
            if fault == "http400":  # a lookup refused: no statement about the charge
                return LOOKUP_REFUSED
            if fault == "stale" and self._miss(reference):
                return NOT_YET_VISIBLE
        closed = method == "POST" and (fault == "http400" or reference in self.refused)
        if closed and self._live_key(reference):
            closed = False  # the processor replays the key's stored answer instead
        if fault in ("http400", "stale") and not closed:
            self.scheduler.void(site, str(fault))
        if closed:  # the request refused, nothing charged (a closed account)
            self.refused.add(reference)
            status, payload = ACCOUNT_CLOSED
        else:
            path = url.split("://", 1)[1]
            path = path[path.index("/") :]
            status, payload, _ = self.ledger.handle(method, path, headers, body or b"")
        return self._after(site, fault, (status, payload))

    @staticmethod
    def _after(site: str, fault: str | None, answer: tuple[int, bytes]) -> tuple[int, bytes]:
        """The faults that meet the answer once the processor acted."""
        if fault == "lost":
            raise TimeoutError("model: the answer was lost after the processor acted")
        if fault == "error_after":
            return 500, b'{"error": {"type": "api_error"}}'
        if fault == "http409":  # acted, then answered "idempotency key in use": outcome unknown
            return 409, b'{"error": "idempotency_key_in_use"}'
        if fault == "crash":
            raise ActorCrashed(site)
        return answer

    def _live_key(self, reference: str) -> bool:
        now, retention = self.ledger.clock(), self.ledger.key_retention_s
        return any(now - c.created_at < retention for c in self.ledger.charges_for(reference))

    def _miss(self, reference: str) -> bool:
        """Whether this lookup misses a recent charge (one not yet visible to lookups)."""
        now = self.ledger.clock()
        recent = [c for c in self.ledger.charges_for(reference) if now - c.created_at < STALE_LOOKUP_S]
        if not recent or self.missed[recent[0].charge_id] >= STALE_LOOKUPS:
            return False
        self.missed[recent[0].charge_id] += 1
        return True


@contextmanager
def platform(aws: awsenv.AwsEnv, monkeypatch: pytest.MonkeyPatch, start_ms: int) -> Iterator[Platform]:
    """A fresh scheduler, clock and processor over the (shared) moto environment."""
    import payments.ids

    clock = Clock(start_ms)
    # Every actor reads this one clock (the model moves it); ids take their time from the module.
    monkeypatch.setattr(payments.ids, "now_ms", clock.ms)
    scheduler = Scheduler()
    ledger = Ledger(credential=CREDENTIAL, clock=clock.seconds)
    # Two index shards: the sweeper's 3 days x 16 shards of queries per run would dominate.
    # The smallest retry budget the module accepts (variables.tf: max_settlement_attempts >= 16): the
    # harshest for liveness, and the quickest to spend where a schedule must end parked.
    settings = replace(
        config.load_settings(awsenv.process_env()),
        day_shards=2,
        sweep_lookback_days=2,
        max_settlement_attempts=MIN_SETTLEMENT_ATTEMPTS,
    )
    holder: list[Platform] = []
    # Each actor reads the shared clock through its own offset (Scheduler.skews; 0 unless drawn).
    actor_clock = ActorClock(lambda: clock.ms() + scheduler.skew())
    published: list[dict[str, Any]] = []

    def get_parameter(name: str, **_: Any) -> Any:
        if name == settings.processor_endpoint_param:
            return ENDPOINT
        if name == settings.processor_credentials_param:
            return CREDENTIAL
        return awsenv.FRAUD_RULES

    services = Services(
        settings=settings,
        repo=Repository(settings, Faulty(scheduler, aws.ddb, "dynamodb"), actor_clock),  # type: ignore[arg-type]
        sqs=Faulty(scheduler, aws.sqs, "sqs"),  # type: ignore[arg-type]
        sns=Faulty(scheduler, Recorded(aws.sns, published), "sns"),  # type: ignore[arg-type]
        s3=Faulty(scheduler, aws.s3, "s3"),  # type: ignore[arg-type]
        sfn=ModelSfn(lambda: holder[0], scheduler),  # type: ignore[arg-type]
        get_parameter=get_parameter,
        processor_transport=ModelProcessor(scheduler, ledger).transport,
        clock=actor_clock,
    )
    model = Platform(aws, scheduler, clock, ledger, services, published=published)
    holder.append(model)
    _serve_retry_handler(model, monkeypatch)
    # The handler's JSON log lines (one or two per delivery) say nothing the model checks.
    handler_log = logging.getLogger(retry_handler.logger.name)
    level = handler_log.level
    handler_log.setLevel(logging.CRITICAL)
    try:
        yield model
    finally:
        scheduler.close()
        handler_log.setLevel(level)


def _serve_retry_handler(model: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry handler runs as deployed, over this platform: its services are the model's, its
    metrics are counted in ``model.metrics``, and what ``resume`` raised for a message (which the
    handler catches and reports in ``batchItemFailures``) is kept on the delivering actor."""
    real_resume = retry_handler.resume

    def resume(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return real_resume(*args, **kwargs)
        except Exception as exc:
            actor = model.scheduler.current()
            if actor is not None:
                actor.caught.append(exc)
            raise

    def count(name: str, value: float = 1) -> None:
        model.metrics[name] += int(value)

    monkeypatch.setattr(retry_handler, "services", lambda: model.services)
    monkeypatch.setattr(retry_handler, "resume", resume)
    monkeypatch.setattr(retry_handler, "count", count)


def run_to_completion(
    model: Platform, actor: Actor, fault: Callable[[str], str | None] | None = None
) -> None:
    """Let ``actor`` (and whatever it awaits) run until it finishes: without faults, or meeting
    ``fault(op)`` at each call it makes."""
    for _ in range(10_000):
        if actor.done:
            return
        target = actor
        while target.awaiting is not None and not target.awaiting.done:
            target = target.awaiting
        pending = target.pending
        model.scheduler.step(target, fault(pending) if fault and pending else None)
    raise RuntimeError(f"{actor.name} did not finish")


SWEEP_PERIOD_S = 300  # the sweeper's EventBridge schedule: every 5 minutes


def liveness_bound(settings: config.Settings) -> int:
    """Quiescence rounds (one sweeper period each) within which every payment must end.

    Without faults an attempt fails only by meeting an earlier one's leftovers (a live lease, a
    conflict), and each such failure spends an attempt of the retry budget. An attempt needs at
    most: the sweeper to find its payment stuck (``stuck_after_seconds``, in sweeper periods), the
    sweep's re-enqueue, and one delivery. Hence budget x (stuck periods + 2), plus one round to drain.
    """
    stuck_rounds = -(-settings.stuck_after_seconds // SWEEP_PERIOD_S)
    return settings.max_settlement_attempts * (stuck_rounds + 2) + 1


def drive_calm(model: Platform, rounds: int | None = None) -> int:
    """Quiescence: no more faults (but the few ``scheduler.calm`` still has for the processor and the
    rare sites), and only what runs by itself. Every round is one sweeper period:
    time passes (leases and visibility time-outs expire), every live actor finishes, the failed
    queue's messages are delivered to the retry consumer, the sweeper runs on its schedule. No
    operator: the DLQ is redriven only when the schedule itself drew a redrive. Every payment must
    then end (COMPLETED, REJECTED, final FAILED, or parked) within ``liveness_bound`` rounds.
    Returns the rounds it took."""
    settings = model.services.settings
    model.scheduler.free_running = True
    bound = liveness_bound(settings) if rounds is None else rounds
    for round_ in range(1, bound + 1):
        model.clock.now += SWEEP_PERIOD_S * 1000
        for actor in list(model.scheduler.live()):
            run_to_completion(model, actor)
        model.reap()
        model.pull_failed_queue()
        for delivery in model.deliver_all(model.available()):
            run_to_completion(model, delivery)
        model.reap()
        if model.operator:
            model.redrive()
        if not model.scheduler.live() and not model.queue and settled(model):
            return round_
        sweeper = model.sweeper()
        run_to_completion(model, sweeper)
        model.calm_requeues += len(sweeper.result.redriven) if sweeper.result is not None else 0
    state = [
        (t["transaction_id"], t["status"], t.get("attempts"), t.get("outbox"), t.get("stream_outbox"))
        for t in transactions(model)
    ]
    raise AssertionError(
        f"liveness: not every payment ended within {bound} quiescence rounds: {state}, "
        f"queue {model.queue}, dlq {model.dlq}"
    )


def transactions(model: Platform, fresh: bool = True) -> list[dict[str, Any]]:
    """This run's transactions (one customer per payment: a Query on the by-customer index).
    ``fresh=False`` (quiescence's polling) queries the index only for keys not yet seen."""
    from payments.store.repository import from_attributes

    found = []
    for key in model.payments:
        keys = None if fresh else model.rows.get(key)
        if not keys:
            page = model.aws.ddb.query(
                TableName=model.aws.n["TRANSACTIONS_TABLE"],
                IndexName=model.aws.n["BY_CUSTOMER_INDEX"],
                KeyConditionExpression="customer_id = :c",
                ExpressionAttributeValues={":c": {"S": f"cust_{key}"}},
            )
            keys = model.rows[key] = page.get("Items", [])
        for index_item in keys:
            item = model.aws.ddb.get_item(
                TableName=model.aws.n["TRANSACTIONS_TABLE"],
                Key={"transaction_id": index_item["transaction_id"], "timestamp": index_item["timestamp"]},
                ConsistentRead=True,
            )["Item"]
            found.append(from_attributes(item))
    return found


def forget(model: Platform) -> None:
    """Delete this run's transaction rows once its invariants were checked: moto answers a query on
    an index (the sweeper's by-day, the model's by-customer) by scanning every row of the table, so
    the rows of a shared account's earlier runs would make each later run slower than the last."""
    for keys in model.rows.values():
        for index_item in keys:
            model.aws.ddb.delete_item(
                TableName=model.aws.n["TRANSACTIONS_TABLE"],
                Key={"transaction_id": index_item["transaction_id"], "timestamp": index_item["timestamp"]},
            )
    model.rows.clear()


def audit_entries(model: Platform, transaction_id: str) -> list[dict[str, Any]]:
    from payments.store.repository import from_attributes

    page = model.aws.ddb.query(
        TableName=model.aws.n["AUDIT_TABLE"],
        KeyConditionExpression="transaction_id = :t",
        ExpressionAttributeValues={":t": {"S": transaction_id}},
        ConsistentRead=True,
    )
    return [from_attributes(i) for i in page.get("Items", [])]


def ended(item: Mapping[str, Any]) -> bool:
    """Terminal (COMPLETED, REJECTED, final FAILED) or parked for a human (FAILED with ``parked``)."""
    status = item["status"]
    return status in ("COMPLETED", "REJECTED") or (
        status == "FAILED" and bool(item.get("final") or item.get("parked"))
    )


def settled(model: Platform) -> bool:
    """Every payment ended and owes nothing (a DLQ nobody redrives may still hold old messages)."""
    return all(
        ended(t) and not t.get("outbox") and not t.get("stream_outbox")
        for t in transactions(model, fresh=False)
    )


EVENT_FOR = {"COMPLETED": "transaction.completed", "REJECTED": "transaction.rejected"}


def _check_events(
    where: str, transaction_id: str, item: Mapping[str, Any], events: list[dict[str, Any]]
) -> None:
    """The event contract (docs/interfaces.md, "Outcome events") over the sequence of publishes:
    prefix-consistent (one terminal event type, never a different one after it), every re-send
    under the same ``notification_id``, and the last event naming the final status; a parked
    payment has none."""
    kinds = [str(e.get("event_type")) for e in events]
    assert len(set(kinds)) <= 1, f"{where}: contradicting events {kinds}"
    ids_ = {str(e.get("notification_id")) for e in events}
    assert ids_ <= {f"{transaction_id}#{kind}" for kind in kinds}, f"{where}: notification ids {ids_}"
    assert len(ids_) <= 1, f"{where}: re-sends under different ids {ids_}"
    status = str(item["status"])
    if status == "FAILED" and not item.get("final"):
        assert not kinds, f"{where}: parked, yet announced {kinds}"
        return
    expected = EVENT_FOR.get(status, "transaction.failed")
    assert kinds, f"{where}: ended without its event (expected {expected})"
    assert kinds[-1] == expected, f"{where}: events {kinds}, the last must be {expected}"
    assert all(e.get("status") == status for e in events), (
        f"{where}: events name {[e.get('status') for e in events]}"
    )


def check_invariants(model: Platform) -> dict[str, Any]:
    """The settlement protocol's invariants over every transaction of the run (raises on a breach)."""
    items = {t["transaction_id"]: t for t in transactions(model)}
    stream: dict[str, list[tuple[int, str | None, str]]] = {}
    for raw in model.aws.audit_stream():
        body = json.loads(raw["Body"])
        stream.setdefault(body["transaction_id"], []).append(
            (body["version"], body["from_status"], body["to_status"])
        )
    published: dict[str, list[dict[str, Any]]] = {}
    for event in model.published:
        published.setdefault(str(event["transaction_id"]), []).append(event)
    delivered: dict[str, set[str]] = {}
    for role in ("events", "failed"):
        for envelope in model.aws.notifications(role):
            attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
            transaction_id = json.loads(envelope["Message"])["transaction_id"]
            delivered.setdefault(transaction_id, set()).add(attributes["notification_id"])
    # Every key the client used created at most one transaction (none if every POST failed).
    per_key: dict[str, int] = {}
    for item in items.values():
        key = str(item["customer_id"]).removeprefix("cust_")
        per_key[key] = per_key.get(key, 0) + 1
    assert all(n == 1 for n in per_key.values()), per_key
    for transaction_id, item in items.items():
        where = f"{transaction_id}: {item['status']}"
        charges = model.ledger.charges_for(transaction_id)
        assert len(charges) <= 1, f"{where}: charged {len(charges)} times"
        final_failed = item["status"] == "FAILED" and bool(item.get("final"))
        parked = item["status"] == "FAILED" and bool(item.get("parked")) and not final_failed
        assert ended(item), f"{where}: neither terminal nor parked"
        assert not item.get("outbox") and not item.get("stream_outbox"), f"{where}: outbox not drained"
        if item["status"] == "COMPLETED":
            assert charges and charges[0].outcome == "approved", f"{where}: completed without a charge"
            assert item["processor_reference"] == charges[0].charge_id
        elif final_failed:
            assert not charges and item.get("charge_sent_at") is None, f"{where}: final FAILED after a charge"
        elif parked:
            assert item.get("charge_sent_at") is not None, f"{where}: parked, yet no charge was ever sent"
        elif charges:
            assert charges[0].outcome == "declined", f"{where}: rejected but the processor charged"
        else:
            assert item.get("rejection", {}).get("source") in ("fraud", "validation", "processor"), where
        audit = sorted(audit_entries(model, transaction_id), key=lambda e: int(e["version"]))
        table = [
            (int(e["version"]), None if e["from_status"] == "NONE" else e["from_status"], e["to_status"])
            for e in audit
        ]
        assert [v for v, _, _ in table] == list(range(1, len(table) + 1)), f"{where}: version gap {table}"
        assert stream.get(transaction_id) == table, (
            f"{where}: stream {stream.get(transaction_id)} != audit {table}"
        )
        _check_events(where, transaction_id, item, published.get(transaction_id, []))
        sent = {str(e.get("notification_id")) for e in published.get(transaction_id, [])}
        assert delivered.get(transaction_id, set()) <= sent, f"{where}: delivered {delivered} not published"
    return {
        "transactions": len(items),
        "charges": len(model.ledger.charges),
        "parked": sum(1 for t in items.values() if t["status"] == "FAILED" and not t.get("final")),
    }
