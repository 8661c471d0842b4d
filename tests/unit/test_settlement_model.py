"""Model-based test of the settlement protocol: at most one charge, whatever the interleaving.

The explorer generates schedules over the actors of tests/unit/model.py (client retries, Step Functions
executions, duplicated and timed-out task invocations, duplicate SQS deliveries, the retry
consumer, the sweeper, the safety net, DLQ redrive), 1-4 payments each (approved and declined cards,
amounts over and under the fraud threshold), and the faults (throttled calls, lost answers,
time-outs after the charge, crashes before and after a call, the processor's answers: refused
requests, 409, 429 and 5xx, lookups that miss a charge for a while; key retention passing, processor
outages that dead-letter retry messages, clocks skewed per invocation by up to 5 minutes either
way; pauses longer than the lease are the "lease" action: the clock passes the lease while every
actor is held at a checkpoint). A delivery is an invocation of the real retry handler with a batch
of the failed queue's messages; its partial batch answer decides what SQS deletes.

Quiescence runs only what runs by itself (time, deliveries, visibility expiry, the sweeper every 5
minutes; a DLQ redrive only if the schedule drew one), and meets what is left of the schedule's
processor and rare-site faults: within a number of rounds derived from the retry budget every
payment must end, COMPLETED, REJECTED, final FAILED, or parked. Then, for every payment: at most one
charge; the terminal status agrees with the processor's ledger; nothing is left owed; the audit
table and the FIFO stream hold the same transitions in the same order; the outcome events, in
publish order, are prefix-consistent (one event type, re-sent under one notification id, the last
one naming the final status; none for a parked payment).

Coverage by place: ``FAULTS`` lists every call site and the faults meaningful there. Random walks
meet faults where the actors are, so the processor and the rarely reached sites (``RARE_SITES``)
have fault budgets of their own; and a directed pass forces each (site, kind) cell at a chosen call
of its site in a schedule of its own (``PRELUDES`` reach the sites a happy path never calls), and
three liveness schedules end in an outage as long as the failed queue's receive budget with no
operator. The test prints the site x kind table of faults met and fails on an empty cell or an
unknown call site.

An explorer of our own rather than Hypothesis: each schedule draws from ``random.Random(seed)``,
seeds ``MODEL_SEED`` (default fixed, so CI explores the same schedules every run) to
``MODEL_SEED + MODEL_EXAMPLES - 1`` (500 by default, in two halves: this file runs the first with
the directed ones, test_settlement_model_second_half.py the rest, so xdist spreads them), then the
directed ones. Schedules share a moto account (rebuilt every ``CHUNK``; each schedule's transaction
rows are deleted once checked), so a schedule's shape can depend on what earlier ones left (random
ids): Hypothesis' replay flags that as flaky data generation, while a seed per schedule stays
reproducible (``MODEL_ONLY=<seed>`` with the same ``MODEL_EXAMPLES`` reruns one, directed ones too;
a failure prints its seed, its ordinal in the run and the schedule's log). ``MODEL_DIRECTED=0``
skips the directed pass (and the table's checks) while developing.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest

from tests.support.inprocess import in_process_aws
from tests.unit import awsenv, model

# slow: ~4 minutes of schedules; `make test` runs it, `make check` leaves it out.
pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "500"))
# The random schedules in two halves, one per test file (test_settlement_model_second_half.py), so
# that `pytest -n 2 --dist loadfile` explores them on both workers.
HALF = (EXAMPLES + 1) // 2
SEED = int(os.environ.get("MODEL_SEED", "20261129"))
ONLY = os.environ.get("MODEL_ONLY")
CHAOS_STEPS = 90
CHUNK = 25
FAULT_RATE = 0.2  # per call, while the schedule's fault budget lasts
PROCESSOR_FAULT_RATE = 0.6
TIMEOUT_RATE = 0.03  # per step: a task time-out or an execution time-out
DAY_MS = 86_400_000

# Every call site of the protocol and the faults meaningful there (the cells of the coverage table:
# each must be met at least once per run). A read's "lost" is a time-out (ReadTimeoutError, not a
# ClientError); s3 "lost" is an archive written whose answer never came. "crash_before": the actor
# dies before the request leaves (nothing happens server-side); "crash": right after the call.
# The processor's answers (tests/unit/model.py, ModelProcessor): http400 refuses the request
# (nothing charged; a lookup refused says nothing), http429 and http5xx act on nothing, http409 and
# error_after (500) come after the processor acted, stale is a lookup that misses a recent charge;
# a 402 is the processor's own answer to a declined card (the tok_decline tokens).
AWS_KINDS = ["throttle", "lost", "crash_before", "crash"]
FAULTS: dict[str, list[str]] = {
    "dynamodb.transact_write_items": AWS_KINDS,
    "dynamodb.update_item": AWS_KINDS,
    "dynamodb.get_item": AWS_KINDS,
    "dynamodb.query": AWS_KINDS,
    "sqs.send_message": AWS_KINDS,
    "sqs.send_message_batch": AWS_KINDS,
    "sns.publish": AWS_KINDS,
    "s3.put_object": AWS_KINDS,
    "processor.POST": [
        "crash_before",
        "refused",
        "http400",
        "http429",
        "http5xx",
        "lost",
        "error_after",
        "http409",
        "crash",
    ],
    "processor.GET": ["crash_before", "refused", "http400", "http429", "http5xx", "stale", "lost", "crash"],
    "sfn.start_execution": [*AWS_KINDS, "duplicate"],
    "await": ["timeout", "abort"],
}
# Call sites a schedule reaches seldom (a failure's retry enqueue, an outcome's notice and archive):
# every random schedule keeps faults of their own for them, met there at RARE_FAULT_RATE per call,
# in the chaos steps or, for what is left, in quiescence (as are the processor's).
RARE_SITES = frozenset({"sqs.send_message", "sns.publish", "s3.put_object"})
RARE_FAULT_RATE = 0.5
# Directed pass: faults placed first so that a site the happy path never calls is reached (a lost
# charge answer is looked up at once; three refused charges fail the workflow's attempt, whose
# RecordFailure enqueues the retry).
PRELUDES: dict[str, list[tuple[str, str, int]]] = {
    "processor.GET": [("processor.POST", "lost", 1)],
    "sqs.send_message": [("processor.POST", "refused", n) for n in (1, 2, 3)],
}
TOKENS = ["tok_visa_4242", "tok_mastercard_5454", "tok_decline_funds", "tok_decline_expired_card"]
AMOUNTS = ["42.00", "7.50", "1999.99", "310.25", "12500.00"]  # 12,500: over the fraud threshold
ACTIONS = ["run"] * 16 + [
    "deliver",
    "redeliver",
    "sweep",
    "lease",
    "stuck",
    "day",
    "redrive",
    "pull",
]
BATCH = 3  # the most messages a chaos step's delivery takes (quiescence: the mapping's 10)
OUTAGE_RATE = 0.1  # schedules whose processor goes down once (at a random step)
SKEW_RATE = 0.25  # schedules whose actors' clocks are off, each by its own offset
MAX_SKEW_MS = 5 * 60_000  # several minutes, either way: well past the 90 s settlement lease
OUTAGE_SCHEDULES = 3  # directed: an outage as long as the failed queue's receive budget, no operator

DIRECTED = os.environ.get("MODEL_DIRECTED", "1") != "0"

STATS: dict[str, int] = {
    "schedules": 0,
    "directed": 0,
    "payments": 0,
    "faults": 0,
    "faulted_schedules": 0,
    "steps": 0,
    "charges": 0,
    "parked": 0,
    "unattended_dlq": 0,
    "skewed": 0,
    "calm_requeues": 0,
    "calm_rounds_max": 0,
}
HITS: Counter[tuple[str, str]] = Counter()  # faults met per (site, kind), random and directed
SITES: set[str] = set()  # every call site the run met


def _fault_options(op: str | None) -> list[str]:
    if op is None:
        return []
    return FAULTS.get("await" if op.startswith("await ") else op, [])


Budget = tuple[int, int, int]  # faults left: AWS and Step Functions, the processor, the rare sites


def _pool(op: str | None) -> int:
    """Which of a schedule's fault budgets the call at ``op`` draws on."""
    if (op or "").startswith("processor."):
        return 1
    return 2 if op in RARE_SITES else 0


def _run_one(rng: random.Random, platform: model.Platform, budget: Budget) -> Budget:
    """Move one ready actor; its next call may meet a fault. Returns the faults left."""
    # Now and then (while faults are left) Step Functions gives up waiting on a running task.
    ready = platform.scheduler.ready(allow_timeouts=budget[0] > 0 and rng.random() < TIMEOUT_RATE)
    if not ready:
        return budget
    actor = rng.choice(ready)
    # The processor's faults are what the protocol is about, and the rare sites would never see
    # one if they shared the common budget: each has a rate and a budget of its own.
    pool = _pool(actor.pending)
    options = _fault_options(actor.pending) if budget[pool] > 0 else []
    rate = (FAULT_RATE, PROCESSOR_FAULT_RATE, RARE_FAULT_RATE)[pool]
    if actor.awaiting is not None and not actor.awaiting.done:
        fault = rng.choice(options)  # only a time-out ends this wait
    else:
        fault = rng.choice(options) if options and rng.random() < rate else None
    if fault is not None:
        spent = list(budget)
        spent[pool] -= 1
        budget = (spent[0], spent[1], spent[2])
    platform.scheduler.step(actor, fault)
    return budget


def _operate(rng: random.Random, platform: model.Platform, action: str) -> None:
    """The world around the actors: SQS deliveries, the sweeper's schedule, time, the operator."""
    settings_ = platform.services.settings
    if action == "deliver" and platform.available():
        # One retry invocation, with a batch of what the queue holds (up to BATCH messages).
        available = platform.available()
        platform.deliver(rng.sample(available, rng.randint(1, min(BATCH, len(available)))))
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
    elif action == "redrive" and not platform.unattended:
        platform.operator = True  # an operator is at work: quiescence may redrive too
        platform.redrive()
    elif action == "pull":
        platform.pull_failed_queue()


def _schedule(rng: random.Random, platform: model.Platform, faults: bool, outage: int = 0) -> None:
    """Chaos steps. ``outage``: the processor goes down for that many of the failed queue's
    visibility time-outs (at a random step; 0: none), which dead-letters retry messages that
    without an operator only the sweeper's re-enqueue brings back."""
    # (AWS and Step Functions, processor, rare sites); a directed schedule meets only its directed faults.
    budget = (rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 2)) if faults else (0, 0, 0)
    steps = rng.randint(CHAOS_STEPS // 4, CHAOS_STEPS)
    if platform.unattended:
        # A liveness schedule: the outage alone, then quiescence starts with its dead letters. (No
        # chaos before it: a message left undelivered past the sweeper's cutoff is re-enqueued, a
        # second carrier spending attempts too, and "nothing parked" would not follow.)
        platform.outage(outage)
        return
    outage_at = rng.randrange(steps) if outage else -1
    for step in range(steps):
        platform.reap()
        if step == outage_at:
            platform.outage(outage)
        action = rng.choice(ACTIONS)
        STATS["steps"] += 1
        if action == "run":
            budget = _run_one(rng, platform, budget)
        else:
            _operate(rng, platform, action)
    # The processor and the rare sites are reached late (a payment settles, then is announced and
    # archived), often only after the chaos steps: what is left of their budgets is met there while
    # the automatic actors finish (still finitely many faults, so every payment must still end
    # within the liveness bound).
    left = list(budget)

    def calm(op: str) -> str | None:
        pool = _pool(op)
        rate = (0.0, PROCESSOR_FAULT_RATE, RARE_FAULT_RATE)[pool]
        if left[pool] > 0 and rng.random() < rate:
            left[pool] -= 1
            return rng.choice(_fault_options(op))
        return None

    platform.scheduler.calm = calm


def _explore(
    aws: awsenv.AwsEnv,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    directed: list[tuple[str, str, int]] | None = None,
    outage: int | None = None,
) -> bool:
    """One schedule; ``directed``: its faults (the last one the cell under test), no random ones.
    Returns whether every directed fault was met."""
    rng = random.Random(seed)
    ordinal = next(model.SCHEDULE_ORDINALS)  # in this run: both halves, directed ones too
    start = int(time.time() * 1000) + (seed - SEED) * 3 * DAY_MS
    with model.platform(aws, monkeypatch, start) as platform:
        platform.scheduler.forced = list(directed or [])
        platform.unattended = outage is not None  # the liveness schedules: nobody redrives the DLQ
        if directed is None and rng.random() < SKEW_RATE:
            # Clock skew: every invocation (client, task, delivery, sweeper) reads the time off by
            # its own offset; the processor and moto keep the true time.
            skew = random.Random(seed ^ 0x5EED)
            platform.scheduler.skews = lambda: skew.randint(-MAX_SKEW_MS, MAX_SKEW_MS)
            STATS["skewed"] += 1
        # A prelude aims at one payment's path; otherwise 1-4 payments, each its own card and amount.
        count = 1 if directed and len(directed) > 1 else rng.randint(1, 4)
        for index in range(count):
            token, amount = rng.choice(TOKENS), rng.choice(AMOUNTS)
            if directed is not None and index == 0:
                token, amount = TOKENS[0], AMOUNTS[0]  # one payment takes every step to COMPLETED
            platform.client(f"s{seed}p{index}", token, f"merch_s{seed}", amount)
        try:
            if outage is None:  # a random schedule: now and then the processor goes down
                outage = rng.randint(2, model.MAX_RECEIVES + 1) if rng.random() < OUTAGE_RATE else 0
            _schedule(rng, platform, faults=directed is None, outage=outage)
            # Dead letters no operator will redrive: only the sweeper's re-enqueue can end these.
            STATS["unattended_dlq"] += int(bool(platform.dlq) and not platform.operator)
            rounds = model.drive_calm(platform)
            STATS["calm_requeues"] += platform.calm_requeues
            figures = model.check_invariants(platform)
            model.forget(platform)
            # The retry budget is sized to ride out an outage as long as the failed queue's receive
            # budget: after it, nothing is parked (parking is for an outcome still unknown).
            assert not (platform.unattended and figures["parked"]), f"parked after an outage: {figures}"
        except BaseException as exc:
            log = "\n".join(platform.scheduler.log)
            # Its ordinal in this run: every schedule before it passed (random, directed, liveness).
            raise AssertionError(
                f"schedule seed {seed}{f' directed {directed}' if directed else ''} "
                f"(schedule {ordinal} of the run) broke the protocol "
                f"(rerun: MODEL_EXAMPLES={EXAMPLES} MODEL_ONLY={seed}): {exc}\nschedule:\n{log}"
            ) from exc
        hits = platform.scheduler.hits
        HITS.update(hits)
        SITES.update(platform.scheduler.calls)
        STATS["schedules"] += 1
        STATS["directed"] += int(directed is not None)
        STATS["payments"] += figures["transactions"]
        STATS["faults"] += sum(hits.values())
        STATS["faulted_schedules"] += int(bool(hits))
        STATS["charges"] += figures["charges"]
        STATS["parked"] += figures["parked"]
        STATS["calm_rounds_max"] = max(STATS["calm_rounds_max"], rounds)
        return not platform.scheduler.forced


def _cells() -> list[tuple[str, str]]:
    return [(site, kind) for site, kinds in FAULTS.items() for kind in kinds]


def _plan(seed: int) -> tuple[list[tuple[str, str, int]] | None, int | None]:
    """What schedule ``seed`` is: (directed faults, outage) of a directed or liveness schedule
    (seeds after the random ones: three per cell, then the outages), or (None, None): a random one."""
    index = seed - SEED - EXAMPLES
    cells = _cells()
    if index < 0:
        return None, None
    if index >= 3 * len(cells):
        return [], model.MAX_RECEIVES
    site, kind = cells[index // 3]
    attempt = index % 3
    nth = 1 if attempt or site in PRELUDES else random.Random(seed).randint(1, 3)
    return [*PRELUDES.get(site, []), (site, kind, nth)], None


def _directed(aws: awsenv.AwsEnv, monkeypatch: pytest.MonkeyPatch, index: int) -> bool:
    """The cell's fault at a chosen call of its site (the first, or a random one of the first
    three), in a schedule of its own; if the site was called fewer times, again at the first."""
    for attempt in range(3):
        seed = SEED + EXAMPLES + index * 3 + attempt
        if _explore(aws, monkeypatch, seed, *_plan(seed)):
            return True
    return False


def _table(hits: Counter[tuple[str, str]] = HITS) -> str:
    kinds = list(dict.fromkeys(kind for kinds in FAULTS.values() for kind in kinds))
    width = max(len(site) for site in FAULTS)
    lines = [" " * width + "".join(f"{kind:>{len(kind) + 2}}" for kind in kinds)]
    for site, allowed in FAULTS.items():
        cells = "".join(f"{hits[site, kind] if kind in allowed else '-':>{len(kind) + 2}}" for kind in kinds)
        lines.append(f"{site:<{width}}{cells}")
    return "\n".join(lines)


def explore_random(monkeypatch: pytest.MonkeyPatch, seeds: list[int]) -> None:
    """Run the random schedules of ``seeds``; the first to break an invariant fails the test."""
    for key, value in awsenv.process_env().items():
        monkeypatch.setenv(key, value)
    # A fresh emulated account every CHUNK schedules: moto's state (queues' message history, index
    # rows) grows with every schedule and would make each later one slower than the last.
    for first in range(0, len(seeds), CHUNK):
        with in_process_aws():
            aws = awsenv.build()
            for seed in seeds[first : first + CHUNK]:
                _explore(aws, monkeypatch, seed, *_plan(seed))  # MODEL_ONLY may name a directed one


def check_adversarial(seeds: list[int]) -> None:
    assert STATS["schedules"] >= len(seeds)
    if ONLY is None and len(seeds) >= 100:
        # The exploration is adversarial: most random schedules meet faults.
        assert STATS["faulted_schedules"] >= STATS["schedules"] // 2, STATS


def test_settlement_protocol_holds_its_invariants_under_adversarial_schedules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first half of the random schedules, the directed pass and the liveness schedules."""
    seeds = [int(ONLY)] if ONLY else list(range(SEED, SEED + HALF))
    started = time.monotonic()
    explore_random(monkeypatch, seeds)
    missed: list[tuple[str, str]] = []
    if DIRECTED and ONLY is None:
        # Directed pass: every (site, kind) cell forced in a schedule of its own.
        cells = _cells()
        for first in range(0, len(cells), CHUNK):
            with in_process_aws():
                aws = awsenv.build()
                for index in range(first, min(first + CHUNK, len(cells))):
                    if not _directed(aws, monkeypatch, index):
                        missed.append(cells[index])
        # Liveness: outages that dead-letter retry messages, no operator to redrive them.
        with in_process_aws():
            aws = awsenv.build()
            for index in range(OUTAGE_SCHEDULES):
                seed = SEED + EXAMPLES + 3 * len(cells) + index
                _explore(aws, monkeypatch, seed, *_plan(seed))
    print(f"\nmodel: {STATS} seeds {SEED}..{SEED + HALF - 1} in {time.monotonic() - started:.0f} s")
    print(f"faults met per call site and kind (random walks + directed pass):\n{_table()}")
    check_adversarial(seeds)
    # A call site the table does not know is a site no fault is ever injected at.
    assert set(FAULTS) >= SITES, f"call sites missing from FAULTS: {sorted(SITES - set(FAULTS))}"
    if ONLY is None and DIRECTED:
        assert not missed, f"directed pass never reached {missed}"
        empty = [cell for cell in _cells() if HITS[cell] == 0]
        assert not empty, f"fault cells never met: {empty}\n{_table()}"
        assert STATS["unattended_dlq"] > 0, f"no schedule left dead letters to the sweeper: {STATS}"
        assert STATS["calm_requeues"] > 0, f"the sweeper never re-enqueued in quiescence: {STATS}"
