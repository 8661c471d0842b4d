"""Model-based test of the settlement protocol: at most one charge, whatever the interleaving.

Hypothesis generates schedules over the actors of tests/unit/model.py (client retries, Step Functions
executions, duplicated and timed-out task invocations, duplicate SQS deliveries, the retry
consumer, the sweeper, the safety net, DLQ redrive) and the faults (throttled calls, lost answers,
time-outs after the charge, crashes, processor 5xx, key retention passing). After quiescence, for
every payment: at most one charge at the processor; the terminal status agrees with the processor's
ledger; nothing is left unfinished or owed; the audit table and the FIFO stream hold the same
transitions in the same order; exactly one outcome notification (one id; a re-send after a lost
acknowledgement carries the same id).

The run is derandomized (the same schedules on every run: reproducible in CI). ``MODEL_SEED=<n>``
explores other schedules; ``MODEL_EXAMPLES`` changes how many (default 500).
"""

from __future__ import annotations

import itertools
import os
import time

import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from tests.unit import awsenv, model

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "500"))
SEED = os.environ.get("MODEL_SEED")
CHAOS_STEPS = 40
DAY_MS = 86_400_000

FAULTS: dict[str, list[str]] = {
    "dynamodb.transact_write_items": ["throttle", "lost", "crash"],
    "dynamodb.update_item": ["throttle", "lost", "crash"],
    "dynamodb.get_item": ["throttle", "crash"],
    "dynamodb.query": ["throttle"],
    "sqs.send_message": ["throttle", "lost", "crash"],
    "sqs.send_message_batch": ["throttle", "lost", "crash"],
    "sns.publish": ["throttle", "lost", "crash"],
    "s3.put_object": ["throttle", "crash"],
    "processor.POST": ["refused", "lost", "error_after", "crash"],
    "processor.GET": ["refused", "crash"],
    "sfn.start_execution": ["throttle", "lost", "duplicate", "crash"],
    "await": ["timeout", "abort"],
}
ACTIONS = ["run", "run", "run", "deliver", "redeliver", "sweep", "lease", "stuck", "day", "redrive", "pull"]

_runs = itertools.count()
TIMES = {"chaos": 0.0, "calm": 0.0, "check": 0.0}
STATS: dict[str, int] = {"schedules": 0, "faults": 0, "steps": 0, "charges": 0}


def _fault_options(op: str | None) -> list[str]:
    if op is None:
        return []
    return FAULTS.get("await" if op.startswith("await ") else op, [])


def _run_one(data: st.DataObject, platform: model.Platform, budget: int) -> int:
    """Move one ready actor; its next call may meet a fault. Returns the faults left."""
    ready = platform.scheduler.ready(allow_timeouts=budget > 0)
    if not ready:
        return budget
    actor = data.draw(st.sampled_from(ready))
    options = _fault_options(actor.pending) if budget > 0 else []
    if actor.awaiting is not None and not actor.awaiting.done:
        fault = data.draw(st.sampled_from(options))  # only a time-out ends this wait
    else:
        fault = data.draw(st.sampled_from([None, *options]))
    if fault is not None:
        budget -= 1
        STATS["faults"] += 1
    platform.scheduler.step(actor, fault)
    return budget


def _operate(data: st.DataObject, platform: model.Platform, action: str) -> None:
    """The world around the actors: SQS deliveries, the sweeper's schedule, time, the operator."""
    settings_ = platform.services.settings
    if action == "deliver" and platform.available():
        platform.deliver(data.draw(st.sampled_from(platform.available())))
    elif action == "redeliver":
        in_flight = [m for m in platform.queue if m.in_flight]
        if in_flight:
            platform.deliver(data.draw(st.sampled_from(in_flight)))  # visibility expired
    elif action == "sweep":
        platform.sweeper()
    elif action == "lease":
        platform.clock.now += (settings_.settlement_lease_seconds + 1) * 1000
    elif action == "stuck":
        platform.clock.now += (settings_.stuck_after_seconds + 1) * 1000
    elif action == "day":
        platform.clock.now += DAY_MS + 1000  # the processor forgets the idempotency keys
    elif action == "redrive":
        platform.redrive()
    elif action == "pull":
        platform.pull_failed_queue()


def _schedule(data: st.DataObject, platform: model.Platform) -> None:
    budget = data.draw(st.integers(1, 6), label="fault budget")
    steps = data.draw(st.integers(0, CHAOS_STEPS), label="chaos steps")
    for _ in range(steps):
        platform.reap()
        action = data.draw(st.sampled_from(ACTIONS))
        STATS["steps"] += 1
        if action == "run":
            budget = _run_one(data, platform, budget)
        else:
            _operate(data, platform, action)


def _explore(aws: awsenv.AwsEnv, monkeypatch: pytest.MonkeyPatch, data: st.DataObject) -> None:
    run = next(_runs)
    start = int(time.time() * 1000) + run * 3 * DAY_MS
    with model.platform(aws, monkeypatch, start) as platform:
        payments = data.draw(st.integers(1, 2), label="payments")
        for index in range(payments):
            token = data.draw(st.sampled_from(["tok_visa_4242", "tok_decline_funds"]), label="token")
            platform.client(f"r{run}p{index}", token, f"merch_m{run}")
        try:
            t0 = time.perf_counter()
            _schedule(data, platform)
            t1 = time.perf_counter()
            model.drive_calm(platform)
            t2 = time.perf_counter()
            figures = model.check_invariants(platform)
            t3 = time.perf_counter()
            TIMES["chaos"] += t1 - t0
            TIMES["calm"] += t2 - t1
            TIMES["check"] += t3 - t2
        except BaseException:
            note("schedule:\n" + "\n".join(platform.scheduler.log))
            note(f"reproduce: MODEL_SEED={SEED or 'derandomized'} MODEL_EXAMPLES={EXAMPLES}")
            raise
        STATS["schedules"] += 1
        STATS["charges"] += figures["charges"]


_settings = settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)


@given(data=st.data())
@_settings
def _property(aws: awsenv.AwsEnv, monkeypatch: pytest.MonkeyPatch, data: st.DataObject) -> None:
    _explore(aws, monkeypatch, data)


if SEED is not None:
    _property = seed(int(SEED))(_property)


def test_settlement_protocol_holds_its_invariants_under_adversarial_schedules(
    aws: awsenv.AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _property(aws, monkeypatch)
    print(f"model: {STATS} (seed: {SEED or 'derandomized'}) {TIMES}")
    assert STATS["schedules"] >= min(EXAMPLES, 500) * 0.9
    assert STATS["faults"] > STATS["schedules"]  # the schedules did inject faults
