"""The second half of the settlement model's random schedules (tests/unit/test_settlement_model.py has
the explorer, the invariants and the first half): a file of its own so that `pytest -n 2 --dist
loadfile` runs the two halves on both workers."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.unit import test_settlement_model as explorer

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]


@pytest.mark.skipif(explorer.ONLY is not None, reason="MODEL_ONLY reruns one schedule in the first file")
def test_settlement_protocol_holds_its_invariants_under_more_adversarial_schedules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeds = list(range(explorer.SEED + explorer.HALF, explorer.SEED + explorer.EXAMPLES))
    started = time.monotonic()
    before = explorer.STATS["schedules"]
    hits_before = Counter(explorer.HITS)
    explorer.explore_random(monkeypatch, seeds)
    elapsed = time.monotonic() - started
    print(f"\nmodel (second half): {explorer.STATS} seeds {seeds[0]}..{seeds[-1]} in {elapsed:.0f} s")
    walks = explorer.HITS - hits_before  # this half's faults, whether or not the first ran here
    print(f"faults met per call site and kind (these random walks):\n{explorer._table(walks)}")
    assert explorer.STATS["schedules"] - before >= len(seeds)
    explorer.check_adversarial(seeds)
