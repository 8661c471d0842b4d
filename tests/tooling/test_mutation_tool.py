"""The mutation tool's arithmetic (``tools/mutation.py``): the score, the sample and its interval."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "tools" / "mutation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_score_counts_not_run_apart_and_equivalents_out() -> None:
    tool = _tool()
    codes = {"m.a__mutmut_1": 1, "m.a__mutmut_2": 0, "m.a__mutmut_3": 0, "m.a__mutmut_4": None}
    summary = tool.summarise(codes, {"m.a__mutmut_3": "why"})
    assert (summary["killed"], summary["survived"], summary["equivalent"], summary["not_run"]) == (1, 1, 1, 1)
    assert summary["score"] == 0.5  # 1 killed of 2 run and not equivalent
    assert summary["survivors"] == ["m.a__mutmut_2"]


def test_a_sample_is_reproducible_sorted_and_never_draws_a_skipped_module() -> None:
    tool = _tool()
    names = [f"payments.jobs.{m}.x_f__mutmut_{i}" for m in ("lock", "cleanup", "report") for i in range(50)]
    first = tool.draw_sample(names, 30, 7, ["payments.jobs.lock.*"])
    assert first == tool.draw_sample(list(reversed(names)), 30, 7, ["payments.jobs.lock.*"])
    assert first == sorted(first) and len(set(first)) == 30
    assert not [n for n in first if ".lock." in n]
    assert first != tool.draw_sample(names, 30, 8, ["payments.jobs.lock.*"])
    assert len(tool.draw_sample(names, 500, 7, [])) == 150  # never more than the population


def test_the_wilson_interval_brackets_the_observed_score_and_narrows_with_the_sample() -> None:
    tool = _tool()
    low, high = tool.wilson(95, 100)
    assert low < 0.95 < high
    assert low > 0.88 and high < 0.98
    assert tool.wilson(100, 100)[1] == 1.0 and tool.wilson(100, 100)[0] < 1.0  # all killed: still a range
    narrow = tool.wilson(950, 1000)
    assert narrow[1] - narrow[0] < high - low
    assert tool.wilson(0, 0) == (0.0, 1.0)
