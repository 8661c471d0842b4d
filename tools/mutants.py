"""Planted bugs: each ``tests/mutants/NNN-what-breaks.patch`` is one realistic single change to the
ops jobs; the tests it names must fail with it applied (``make mutants``).

A patch file starts with comment lines (``git apply`` skips text before the diff)::

    # rule: <the rule the change breaks>
    # tests: <pytest node ids or files, space-separated>

Each patch is applied to the working tree, its tests run, and the patch is reverted (also on
Ctrl-C). A patch that no longer applies, or whose tests pass, fails the run.

Usage: ``python tools/mutants.py [--only PREFIX] [--list]`` (``--only 1`` runs patches 100-199).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "tests" / "mutants"
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


def git_apply(patch: Path, *extra: str) -> bool:
    done = subprocess.run(  # noqa: S603 - fixed argv, the repository's own patches
        ["git", "apply", *extra, str(patch)],  # noqa: S607 - git from PATH, as the Makefile uses it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
    return done.returncode == 0


def run_one(patch: Path) -> str:
    rule, tests = header(patch)
    if not rule or not tests:
        return "malformed (needs '# rule:' and '# tests:' lines)"
    if not git_apply(patch, "--check"):
        return "does not apply"
    git_apply(patch)
    try:
        result = subprocess.run(  # noqa: S603 - this interpreter's pytest on the patch's own tests
            [*PYTEST, *tests], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
        )
    finally:
        if not git_apply(patch, "-R"):
            raise SystemExit(f"could not revert {patch.name}: fix the working tree by hand")
    if result.returncode == 1:
        return "killed"
    if result.returncode == 0:
        return "SURVIVED"
    return f"error (pytest exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


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
        failed += verdict != "killed"
        print(f"{patch.name}: {verdict} ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"{len(patches) - failed}/{len(patches)} planted bugs caught")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
