"""The soak report: failures, transient re-runs with their calls, apply time statistics, clean streak."""

from __future__ import annotations

from pathlib import Path

from bench import soak
from devkit import local


def test_report_counts_failures_reruns_and_apply_time_statistics() -> None:
    cycles = [
        soak.Cycle(1, True, apply_s=150.0, destroy_s=60.0, resources=235),
        soak.Cycle(2, True, apply_s=170.0, destroy_s=70.0, resources=235),
        soak.Cycle(
            3,
            True,
            apply_s=190.0,
            destroy_s=65.0,
            resources=235,
            retries=[("apply", ["IAM: PutRolePolicy"], "Error: putting IAM Role Policy")],
        ),
        soak.Cycle(4, False, error="terraform apply failed (exit 1):\nError: boom"),
        soak.Cycle(5, True, apply_s=160.0, destroy_s=61.0, resources=235),
    ]
    report = soak.render_cycles(cycles, None, "waitress")
    assert (
        "**5 cycles, 1 failed, 1 transient re-runs; longest run of clean cycles (no failure, no re-run): 2.**"
        in report
    )
    assert "Apply time min / median / max: 150 / 165 / 190 s" in report
    assert "| 3 | ok | 235 | 190 s | 65 s | apply: IAM: PutRolePolicy |" in report
    assert "| 4 | FAILED |" in report and "Error: boom" in report
    assert "served by waitress" in report and "terraform parallelism 10" in report


def test_soak_runs_in_its_own_local_dir_and_restores_ops_local(tmp_path: Path) -> None:
    before = (local.LOCAL_DIR, local.EMULATOR_LOG, local.backend_dir("moto"))
    with soak.isolated_local_dir(tmp_path / "soak") as where:
        assert where == local.LOCAL_DIR and where / "emulator.log" == local.EMULATOR_LOG
        assert local.stack_dir("moto") == where / "moto" / "stack"
    assert (local.LOCAL_DIR, local.EMULATOR_LOG, local.backend_dir("moto")) == before


def test_hammer_names_the_replayed_calls_with_their_counts() -> None:
    calls = [
        "lambda DELETE /2015-03-31/functions/soak-a/policy/p7",
        "lambda DELETE /2015-03-31/functions/soak-a/policy/p12",
        "iam GetRolePolicy",
    ]
    assert soak.replayed_summary(calls) == (
        "lambda DELETE /N-N-N/functions/soak-a/policy/pN: 2, iam GetRolePolicy: 1"
    )
