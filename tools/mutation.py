"""Mutation testing with mutmut (``make mutation TARGET=settlement|fencing|jobs``): the score of a module set
against the tests that claim it, recorded in ``bench/results/mutation.md``.

mutmut names a mutant by the module path it reads from the file path, and strips only a ``src/``
prefix; our Lambda package lives in ``lambda/payments``, which the tests import as ``payments``. So
the run happens in a scratch copy (``build/mutation/<target>``) with ``lambda/payments`` moved to
``src/payments`` and pytest's path pointed there; the working tree is never touched. ``ops`` stays
at the top level (its module names already match).

Each target names the files mutated and the tests run against them (mutmut runs, per mutant, only
the tests that executed the mutated function). ``tests/mutation/equivalent.txt`` lists mutants
argued equivalent (one per line: ``<mutant name>  # why``); the score is killed / (all - equivalent).

Usage: ``python tools/mutation.py TARGET [--max-children N] [--reuse] [--only PATTERN ...]
[--sample N [--seed S] [--skip PATTERN ...]]``; prints
the figures (overall and per module) and writes ``build/mutation/<target>.json`` (the survivors by
name, for ``mutmut show`` in the copy). ``--only`` runs the mutants matching a glob
(``'payments.jobs.lock.*'``) and, with ``--reuse``, lets a large target be run module by module in
one copy; mutants not run yet are counted apart, never as survivors or kills.

``--sample N`` is for a target too large to run whole on two cores (``jobs``: thousands of mutants,
each running a moto-backed suite): mutmut writes every mutant first (no test run), then a simple
random sample of N of them, drawn with ``--seed`` from the sorted names minus ``--skip`` globs
(modules scored in full by another target), is run, and the figures are the sample's, with a 95 %
Wilson interval for the score of the population it was drawn from.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.txt"

# "markers": the -m expression (default: not slow); "ignore": test files mutmut cannot run
TARGETS: dict[str, dict[str, list[str]]] = {
    # The settlement protocol: steps, leases and processor calls, the outbox, recovery.
    "settlement": {
        "mutate": [
            "src/payments/settle.py",
            "src/payments/recovery.py",
            "src/payments/steps.py",
            "src/payments/outbox.py",
        ],
        "tests": [
            "tests/unit/test_settlement_protocol.py",
            "tests/unit/test_settlement_outcomes.py",
            "tests/unit/test_workflow.py",
            "tests/unit/test_retry.py",
            "tests/unit/test_settlement_rules.py",
        ],
    },
    # The fencing core of the cleanup (a subset of "jobs", for a run that fits an hour on two
    # cores): the lock and its fence, the reconciliation of a crashed run's journal, the retention
    # rules, the request counting and the back-off, against the cleanup suites that drive them.
    "fencing": {
        "mutate": [
            "src/payments/jobs/lock.py",
            "src/payments/jobs/reconcile.py",
            "src/payments/jobs/retention.py",
            "src/payments/jobs/calls.py",
            "src/payments/jobs/backoff.py",
        ],
        "tests": [
            "tests/ops/test_ops_cleanup.py",
            "tests/ops/test_ops_cleanup_safety.py",
            "tests/ops/test_ops_cleanup_fencing.py",
            "tests/ops/test_ops_cleanup_writers.py",
            "tests/ops/test_ops_cleanup_verify.py",
            "tests/ops/test_ops_cleanup_invariant_mix.py",
            "tests/ops/test_request_counting.py",
            "tests/ops/test_ops_cli.py",
            "tests/ops/test_ops_fencing_rules.py",
        ],
        # the take-over, held-lock and crash suites are marked slow: they are what tests the lock
        "markers": ["slow or not slow"],
    },
    # The ops jobs and the CLI's decisions: lock and fencing, cleanup, archive and verify,
    # reconcile, retention, report, redrive, and the CLI commands that choose what to run.
    "jobs": {
        "mutate": [
            "src/payments/jobs/*",
            "ops/cli/cleanup.py",
            "ops/cli/redrive.py",
            "ops/cli/report.py",
            "ops/cli/status.py",
            "ops/core/status.py",
        ],
        "tests": ["tests/ops"],
        "markers": ["slow or not slow"],
        # its report test swaps sys.stdout under mutmut's own capture and fails the clean run
        "ignore": ["tests/ops/test_ops_handlers.py"],
    },
}
# Mutmut's exit-code classification of a mutant run (its ``mutmut/__main__.py``).
KILLED = {1, 3, -24, 24, 152, 255}  # failed tests, or killed by mutmut's time-out
SURVIVED = {0, 5, 33}  # 5, 33: no test ran the mutant — counted as survived, never as killed


def _copy_tree(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    listed = ["lambda", "ops", "tests", "devkit", "pyproject.toml"]
    files = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "ls-files", "-co", "--exclude-standard", *listed],  # noqa: S607 - git from PATH, as make's
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if not source.is_file():
            continue
        target = dest / name.replace("lambda/payments/", "src/payments/", 1)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _configure(dest: Path, target: dict[str, list[str]]) -> None:
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace('pythonpath = ["lambda", "."]', 'pythonpath = ["src", "."]')
    text += "\n[tool.mutmut]\n" + "\n".join(
        [
            'source_paths = ["src/payments/", "ops/"]',
            f"only_mutate = {json.dumps(target['mutate'])}",
            'also_copy = ["lambda/", "devkit/"]',
            "pytest_add_cli_args = "
            + json.dumps(
                ["-p", "no:cacheprovider", "-q", "-n", "0", "-m", target.get("markers", ["not slow"])[0]]
                + [f"--ignore={path}" for path in target.get("ignore", [])]
            ),
            f"pytest_add_cli_args_test_selection = {json.dumps(target['tests'])}",
        ]
    )
    pyproject.write_text(text + "\n")


def _equivalent() -> dict[str, str]:
    found: dict[str, str] = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            name, _, why = line.partition("#")
            if name.strip():
                found[name.strip()] = why.strip()
    return found


def _results(dest: Path) -> dict[str, int | None]:
    """Mutant name -> exit code (None: not run) from mutmut's ``.meta`` files."""
    out: dict[str, int | None] = {}
    for meta in (dest / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text())
        out.update(data.get("exit_code_by_key", {}))
    return out


# Writes every mutant of the copy and its ``.meta`` (all verdicts None) without running a test: the
# first steps of ``mutmut run`` (mutmut 3.7 ``_run``), so that a sample can be drawn from the names.
_GENERATE = """
import os
os.environ["MUTANT_UNDER_TEST"] = "mutant_generation"
from pathlib import Path
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths,
                             store_lines_covered_by_tests)
Path("mutants").mkdir(exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths(); store_lines_covered_by_tests()
create_mutants(2)
"""


def _pool(names: list[str], skip: list[str]) -> list[str]:
    return sorted(n for n in names if not any(fnmatch.fnmatch(n, pattern) for pattern in skip))


def draw_sample(names: list[str], size: int, seed: int, skip: list[str]) -> list[str]:
    """A simple random sample of ``size`` names (sorted, reproducible) outside the ``skip`` globs."""
    pool = _pool(names, skip)
    drawn = random.Random(seed).sample(pool, min(size, len(pool)))  # noqa: S311 - a reproducible sample, not a secret
    return sorted(drawn)


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (sound near 100 %, unlike the normal one)."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def summarise(codes: dict[str, int | None], equivalent: dict[str, str], **extra: object) -> dict[str, Any]:
    """The figures of one copy: score = killed / (run - equivalent); mutants not run are apart."""
    ran = {k: c for k, c in codes.items() if c is not None}
    killed = sorted(k for k, c in ran.items() if c in KILLED)
    survived = sorted(k for k, c in ran.items() if c in SURVIVED and k not in equivalent)
    eq = sorted(k for k in ran if k in equivalent)
    other = sorted(k for k, c in ran.items() if c not in KILLED | SURVIVED and k not in equivalent)
    scored = len(ran) - len(eq)
    by_module: dict[str, dict[str, int]] = {}
    columns = ("mutants", "killed", "survived", "equivalent", "not_run")
    for name, code in sorted(codes.items()):
        module = name.rsplit(".", 1)[0]  # <module>.x_<function>__mutmut_<n> or <module>.xǁ<class>ǁ<method>…
        row = by_module.setdefault(module, dict.fromkeys(columns, 0))
        row["mutants"] += 1
        if code is None:
            row["not_run"] += 1
        elif name in equivalent:
            row["equivalent"] += 1
        elif code in KILLED:
            row["killed"] += 1
        elif code in SURVIVED:
            row["survived"] += 1
    return {
        **extra,
        "mutants": len(codes),
        "not_run": len(codes) - len(ran),
        "killed": len(killed),
        "survived": len(survived),
        "equivalent": len(eq),
        "other": {k: codes[k] for k in other},
        "score": round(len(killed) / scored, 4) if scored else 0.0,
        "by_module": by_module,
        "survivors": survived,
    }


def _pick_sample(dest: Path, args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """Draw the sample (writing the mutants first if the copy has none) and set ``args.only`` to it."""
    if not _results(dest):
        generate = [sys.executable, "-c", _GENERATE]
        subprocess.run(generate, cwd=dest, env=env, check=True, capture_output=True)  # noqa: S603 - mutmut of this interpreter
    sample = draw_sample(list(_results(dest)), args.sample, args.seed, args.skip)
    (dest.parent / f"{args.target}.sample.txt").write_text("\n".join(sample) + "\n")
    done = {k for k, c in _results(dest).items() if c is not None} if args.reuse else set()
    args.only = [n for n in sample if n not in done] or sample  # resume: only those without a verdict
    return sample


def _report_sample(summary: dict[str, Any], args: argparse.Namespace, size: int, population: int) -> None:
    low, high = wilson(summary["killed"], summary["killed"] + summary["survived"])
    summary.update(sample_of=population, seed=args.seed, skip=args.skip, interval=[low, high])
    print(
        f"a random sample of {size} of {population} mutants (seed {args.seed}, skip {args.skip}); "
        f"95 % interval of the score: {low:.1%}-{high:.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--reuse", action="store_true", help="keep an existing copy (resume a run)")
    parser.add_argument("--only", action="append", default=[], help="glob of mutants to run (repeatable)")
    parser.add_argument("--sample", type=int, default=0, help="run a random sample of N mutants only")
    parser.add_argument("--seed", type=int, default=20261206, help="the sample's random seed")
    parser.add_argument("--skip", action="append", default=[], help="glob of mutants never sampled")
    args = parser.parse_args(argv)
    target = TARGETS[args.target]
    dest = ROOT / "build" / "mutation" / args.target
    if not (args.reuse and dest.exists()):
        _copy_tree(dest)
        _configure(dest, target)
    started = time.monotonic()
    env = {**os.environ, "MUTMUT_TARGET": args.target}
    sample = _pick_sample(dest, args, env) if args.sample else []
    mutmut = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *args.only]
    log = dest.parent / f"{args.target}.log"
    with log.open("w") as out:  # mutmut's own progress display: kept in a log, not on the terminal
        run = subprocess.run(mutmut, cwd=dest, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603 - mutmut of this interpreter
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.stderr.write(f"mutmut exited {run.returncode}; see {log}\n")
        return run.returncode
    codes = _results(dest)
    population = len(_pool(list(codes), args.skip))
    if sample:
        codes = {name: codes[name] for name in sample}
    summary = summarise(codes, _equivalent(), target=args.target, seconds=round(elapsed))
    if sample:
        _report_sample(summary, args, len(sample), population)
    (dest.parent / f"{args.target}.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"{args.target}: {summary['mutants']} mutants, {summary['not_run']} not run; of those run "
        f"{summary['killed']} killed, {summary['survived']} survived, {summary['equivalent']} equivalent, "
        f"{len(summary['other'])} other; score {summary['score']:.1%} in {elapsed:.0f} s"
    )
    for module, row in summary["by_module"].items():
        print(f"  {module}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    for name in summary["survivors"]:
        print(f"  survived: {name}")
    equivalent = _equivalent()
    modules = {name.rsplit(".", 1)[0] for name in codes}  # equivalent.txt serves every target
    stale = sorted(k for k in set(equivalent) - set(codes) if k.rsplit(".", 1)[0] in modules)
    if stale:
        print(f"equivalent.txt names mutants that no longer exist: {stale}")
    return 0 if summary["score"] >= 0.85 and not summary["other"] else 1


if __name__ == "__main__":
    sys.exit(main())
