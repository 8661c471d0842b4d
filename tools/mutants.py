"""Planted bugs (``make mutants``): each ``tests/mutants/NNN-what-breaks.patch`` is one realistic
single change that breaks one rule (001-099: settlement; 100-199: the ops jobs); the tests it names
must fail with it applied.

A patch file starts with comment lines (``git apply`` skips text before the diff)::

    # rule: <the rule the change breaks>
    # tests: <pytest arguments: node ids or files, ``-k`` expressions>

Each patch is applied to a scratch copy of ``lambda/`` and ``ops/`` (the working tree is never
touched, so the run is safe beside other test lanes), and its tests run with that copy first on the
import path. A bug counts as caught only when its tests *fail* (pytest exit 1): an import error or a
crash of the run is reported as an error, not as a catch. A patch that no longer applies, is
malformed, errs or survives fails the run.

Usage: ``python tools/mutants.py [--only PREFIX] [--list]`` (``--only 1`` runs patches 100-199).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "tests" / "mutants"
COPIED = ("lambda", "ops")  # what the patches may change (checked: each patch's paths)
PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-n", "0"]


def header(patch: Path) -> tuple[str, list[str]]:
    rule, tests = "", []
    for line in patch.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# rule:"):
            rule = line.removeprefix("# rule:").strip()
        elif line.startswith("# tests:"):
            tests = line.removeprefix("# tests:").split()
    return rule, tests


def touched(patch: Path) -> set[str]:
    """The top-level directories a patch changes."""
    return {
        line.split()[2].removeprefix("a/").split("/", 1)[0]
        for line in patch.read_text().splitlines()
        if line.startswith("diff --git ")
    }


def run_one(patch: Path) -> str:
    rule, tests = header(patch)
    if not rule or not tests:
        return "malformed (needs '# rule:' and '# tests:' lines)"
    outside = touched(patch) - set(COPIED)
    if outside:
        return f"malformed (changes {sorted(outside)}; the scratch copy holds {list(COPIED)})"
    with tempfile.TemporaryDirectory(prefix="mutant-") as scratch:
        for tree in COPIED:
            shutil.copytree(ROOT / tree, Path(scratch) / tree, ignore=shutil.ignore_patterns("__pycache__"))
        applied = subprocess.run(  # noqa: S603 - fixed argv, the repository's own patches
            ["git", "apply", str(patch)],  # noqa: S607 - git from PATH, as the Makefile uses it
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        if applied.returncode != 0:
            return f"does not apply: {applied.stderr.strip()[:300]}"
        env = {**os.environ, "MODEL_EXAMPLES": os.environ.get("MUTANT_MODEL_EXAMPLES", "40")}
        # pyproject's ``pythonpath`` (lambda, .) would import the working tree: the copy replaces it.
        pythonpath = ["-o", f"pythonpath={scratch}/lambda {scratch} ."]
        result = subprocess.run(  # noqa: S603 - this interpreter's pytest on the patch's own tests
            [*PYTEST, *pythonpath, *tests],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if result.returncode == 1:
        return "killed" + caught_by(result.stdout)
    if result.returncode == 0:
        return "SURVIVED"
    return f"error (pytest exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


def caught_by(output: str) -> str:
    """`` by <test>`` (pytest's first FAILED line) and, for the settlement model, the schedule that
    broke: its seed, and its ordinal in the run as the model counts it (every schedule run before
    it, random, directed and liveness ones, passed; a seed is not an ordinal: the directed seeds
    follow all the random ones, while the directed pass runs right after the first half)."""
    failed = re.search(r"^FAILED (\S+)", output, re.MULTILINE)
    said = f" by {failed.group(1)}" if failed else ""
    schedule = re.search(r"schedule seed (\d+)( directed \[[^\]]*\])? \(schedule (\d+) of the run\)", output)
    if schedule:
        seed, directed, ordinal = schedule.groups()
        said += f" at schedule seed {seed}{directed or ''} (schedule {ordinal} of the run)"
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="run only the patches whose name starts with PREFIX")
    parser.add_argument("--list", action="store_true", help="list the patches and their rules")
    args = parser.parse_args(argv)
    patches = sorted(p for p in PATCHES.glob("*.patch") if p.name.startswith(args.only))
    if not patches:
        print(f"no patches match {args.only!r} in {PATCHES.relative_to(ROOT)}")
        return 2
    if args.list:
        for patch in patches:
            print(f"{patch.name}: {header(patch)[0]}")
        return 0
    failed = 0
    for patch in patches:
        started = time.monotonic()
        verdict = run_one(patch)
        failed += not verdict.startswith("killed")
        print(f"{patch.name}: {verdict} ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"{len(patches) - failed}/{len(patches)} planted bugs caught")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
