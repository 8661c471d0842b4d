"""Model-based test of the settlement protocol: at most one charge, whatever the interleaving.

The explorer generates schedules over the actors of tests/unit/model.py (client retries, Step Functions
executions, duplicated and timed-out task invocations, duplicate SQS deliveries, the retry
consumer, the sweeper, the safety net, DLQ redrive) and the faults (throttled calls, lost answers,
time-outs after the charge, crashes, processor 5xx, key retention passing). After quiescence, for
every payment: at most one charge at the processor; the terminal status agrees with the processor's
ledger; nothing is left unfinished or owed; the audit table and the FIFO stream hold the same
transitions in the same order; exactly one outcome notification (one id; a re-send after a lost
acknowledgement carries the same id).

An explorer of our own rather than Hypothesis: each schedule draws from ``random.Random(seed)``,
seeds ``MODEL_SEED`` (default fixed, so CI explores the same 500 schedules every run) to
``MODEL_SEED + MODEL_EXAMPLES - 1``. Schedules share a moto account (rebuilt every ``CHUNK``), so a
schedule's shape can depend on what earlier ones left (random ids, index rows): Hypothesis' replay
flags that as flaky data generation, while a seed per schedule stays reproducible
(``MODEL_ONLY=<seed>`` reruns one; a failure prints its seed and the schedule's log). Faults: a
budget per schedule for AWS/Step Functions calls and one for processor calls (the protocol's
subject, with a higher rate); the printed tally shows every kind occurred.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
from moto import mock_aws

from tests.unit import awsenv, model

# slow: ~3 minutes of schedules; `make test` runs it, `make check` leaves it out.
pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "500"))
SEED = int(os.environ.get("MODEL_SEED", "20261129"))
ONLY = os.environ.get("MODEL_ONLY")
CHAOS_STEPS = 90
CHUNK = 25
FAULT_RATE = 0.2  # per call, while the schedule's fault budget lasts
PROCESSOR_FAULT_RATE = 0.6
TIMEOUT_RATE = 0.03  # per step: a task time-out or an execution time-out
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
ACTIONS = ["run"] * 16 + ["deliver", "redeliver", "sweep", "lease", "stuck", "day", "redrive", "pull"]

STATS: dict[str, int] = {"schedules": 0, "faults": 0, "faulted_schedules": 0, "steps": 0, "charges": 0}
FAULT_KINDS: Counter[str] = Counter()


def _fault_options(op: str | None) -> list[str]:
    if op is None:
        return []
    return FAULTS.get("await" if op.startswith("await ") else op, [])


def _run_one(rng: random.Random, platform: model.Platform, budget: tuple[int, int]) -> tuple[int, int]:
    """Move one ready actor; its next call may meet a fault. Returns the faults left."""
    # Now and then (while faults are left) Step Functions gives up waiting on a running task.
    ready = platform.scheduler.ready(allow_timeouts=budget[0] > 0 and rng.random() < TIMEOUT_RATE)
    if not ready:
        return budget
    actor = rng.choice(ready)
    at_processor = (actor.pending or "").startswith("processor.")
    # The processor's faults are what the protocol is about: a rate and a budget of their own.
    left = budget[1] if at_processor else budget[0]
    options = _fault_options(actor.pending) if left > 0 else []
    rate = PROCESSOR_FAULT_RATE if at_processor else FAULT_RATE
    if actor.awaiting is not None and not actor.awaiting.done:
        fault = rng.choice(options)  # only a time-out ends this wait
    else:
        fault = rng.choice(options) if options and rng.random() < rate else None
    if fault is not None:
        budget = (budget[0], budget[1] - 1) if at_processor else (budget[0] - 1, budget[1])
        STATS["faults"] += 1
        FAULT_KINDS[f"{(actor.pending or '').split(' ')[0]} {fault}"] += 1
    platform.scheduler.step(actor, fault)
    return budget


def _operate(rng: random.Random, platform: model.Platform, action: str) -> None:
    """The world around the actors: SQS deliveries, the sweeper's schedule, time, the operator."""
    settings_ = platform.services.settings
    if action == "deliver" and platform.available():
        platform.deliver(rng.choice(platform.available()))
    elif action == "redeliver":
        in_flight = [m for m in platform.queue if m.in_flight]
        if in_flight:
            platform.deliver(rng.choice(in_flight))  # visibility expired
    elif action == "sweep":
        platform.sweeper()
    elif action == "lease":
        platform.clock.now += (settings_.settlement_lease_seconds + 1) * 1000
    elif action == "stuck":
        platform.clock.now += (settings_.stuck_after_seconds + 1) * 1000
    elif action == "day" and not platform.day_passed:
        # The processor forgets the idempotency keys. Once per schedule: the sweeper runs every
        # 5 minutes and looks two days back, so longer silences are not a schedule AWS would run.
        platform.day_passed = True
        platform.clock.now += DAY_MS + 1000
    elif action == "redrive":
        platform.redrive()
    elif action == "pull":
        platform.pull_failed_queue()


def _schedule(rng: random.Random, platform: model.Platform) -> None:
    budget = (rng.randint(1, 5), rng.randint(1, 3))  # (AWS and Step Functions, processor)
    steps = rng.randint(CHAOS_STEPS // 4, CHAOS_STEPS)
    for _ in range(steps):
        platform.reap()
        action = rng.choice(ACTIONS)
        STATS["steps"] += 1
        if action == "run":
            budget = _run_one(rng, platform, budget)
        else:
            _operate(rng, platform, action)


def _explore(aws: awsenv.AwsEnv, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    faults_before = STATS["faults"]
    start = int(time.time() * 1000) + (seed - SEED) * 3 * DAY_MS
    with model.platform(aws, monkeypatch, start) as platform:
        for index in range(rng.randint(1, 2)):
            token = rng.choice(["tok_visa_4242", "tok_decline_funds"])
            platform.client(f"s{seed}p{index}", token, f"merch_s{seed}")
        try:
            _schedule(rng, platform)
            model.drive_calm(platform)
            figures = model.check_invariants(platform)
        except BaseException as exc:
            log = "\n".join(platform.scheduler.log)
            raise AssertionError(
                f"schedule seed {seed} broke the protocol (rerun: MODEL_ONLY={seed}): {exc}\nschedule:\n{log}"
            ) from exc
        STATS["schedules"] += 1
        STATS["faulted_schedules"] += int(STATS["faults"] > faults_before)
        STATS["charges"] += figures["charges"]


def test_settlement_protocol_holds_its_invariants_under_adversarial_schedules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in awsenv.process_env().items():
        monkeypatch.setenv(key, value)
    seeds = [int(ONLY)] if ONLY else list(range(SEED, SEED + EXAMPLES))
    started = time.monotonic()
    # A fresh emulated account every CHUNK schedules: moto's state (queues' message history, index
    # rows) grows with every schedule and would make each later one slower than the last.
    for first in range(0, len(seeds), CHUNK):
        with mock_aws():
            aws = awsenv.build()
            for seed in seeds[first : first + CHUNK]:
                _explore(aws, monkeypatch, seed)
    print(f"model: {STATS} seeds {SEED}..{SEED + EXAMPLES - 1} in {time.monotonic() - started:.0f} s")
    print(f"faults injected: {dict(sorted(FAULT_KINDS.items()))}")
    assert STATS["schedules"] == len(seeds)
    if ONLY is None and EXAMPLES >= 100:
        # The exploration is adversarial: most schedules meet faults, and every kind occurs.
        assert STATS["faulted_schedules"] >= STATS["schedules"] // 2, STATS
        kinds = {kind.split(" ")[1] for kind in FAULT_KINDS}
        assert kinds >= {
            "throttle",
            "lost",
            "crash",
            "refused",
            "error_after",
            "duplicate",
            "timeout",
            "abort",
        }, kinds
