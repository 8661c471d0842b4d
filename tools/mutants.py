"""Planted-bug corpus runner (``make mutants``): every ``tests/mutants/NNN-*.patch`` must be caught.

Each patch is one realistic single-change bug in the settlement rules. Its first line is a comment
naming the rule it breaks; its second names the guarding tests (``# guard: <pytest args>``). For each
patch: copy ``lambda/`` to a scratch directory, apply the patch there, and run only the guarding tests
with the scratch copy first on ``PYTHONPATH`` (the working tree is never touched). A patch whose
tests pass *survived*: the proof missed a bug. Exit status 1 when any survived or did not apply.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "mutants"


def header(patch: Path) -> tuple[str, list[str]]:
    lines = patch.read_text().splitlines()
    rule = lines[0].lstrip("# ").strip()
    guard = next((ln.split(":", 1)[1].split() for ln in lines[1:3] if ln.startswith("# guard:")), [])
    return rule, guard


def run_one(patch: Path) -> tuple[str, float]:
    _, guard = header(patch)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutant-") as scratch:
        copy = Path(scratch) / "lambda"
        shutil.copytree(ROOT / "lambda", copy, ignore=shutil.ignore_patterns("__pycache__"))
        applied = subprocess.run(  # noqa: S603 - a corpus file of this repository
            ["git", "apply", str(patch)],  # noqa: S607 - git from PATH, as make does
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        if applied.returncode != 0:
            return f"NOT APPLIED ({applied.stderr.strip()[:120]})", time.monotonic() - started
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy), os.environ.get("PYTHONPATH", "")])}
        env["MODEL_EXAMPLES"] = env.get("MUTANT_MODEL_EXAMPLES", "40")
        pytest = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly"]
        # pyproject's ``pythonpath`` would put the working tree's lambda/ first: the copy replaces it.
        pytest += ["-o", f"pythonpath={copy} ."]
        result = subprocess.run(  # noqa: S603 - this interpreter, the corpus's own test names
            [*pytest, *guard],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    verdict = "caught" if result.returncode != 0 else "SURVIVED"
    return verdict, time.monotonic() - started


def main(argv: list[str]) -> int:
    patches = sorted(CORPUS.glob("*.patch"))
    if argv:
        patches = [p for p in patches if any(a in p.name for a in argv)]
    bad = 0
    print(f"{'patch':<55} {'verdict':<10} {'s':>5}  rule")
    for patch in patches:
        verdict, seconds = run_one(patch)
        bad += verdict != "caught"
        print(f"{patch.name:<55} {verdict:<10} {seconds:5.0f}  {header(patch)[0]}", flush=True)
    print(f"{len(patches) - bad}/{len(patches)} caught")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
