"""An independent ``ops cleanup --verify`` (issue 22, item 5): it compares the table with the
archive instead of re-reading the archive's own bookkeeping. The archive bucket is versioned (as
Terraform makes it), so a deleted or trimmed object still shows which rows it held."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from ops_testkit import BUCKET, TABLE, Platform
from payments.jobs.archive import manifest_key, verify_archive
from payments.jobs.retention import cutoff_for
from test_ops_cleanup_safety import CUTOFF, _apply, assert_invariant, kid, old_rows

DATE = CUTOFF.date()


@pytest.fixture
def versioned(platform: Platform) -> Platform:
    platform.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return platform


def _verify(platform: Platform, day: Any = DATE) -> Any:
    return verify_archive(platform.dynamodb, TABLE, platform.s3, BUCKET, day)


def _objects(platform: Platform) -> list[str]:
    return sorted(k for k in platform.s3_keys("cleanup/") if k.endswith(".jsonl"))


def _cleaned(platform: Platform, n: int = 12) -> list[dict[str, Any]]:
    rows = old_rows(n)
    platform.put(rows)
    _apply(platform.dynamodb, platform.s3, chunk_items=6)
    assert _verify(platform).ok
    return rows


def test_an_object_trimmed_together_with_its_manifest_is_detected(versioned: Platform) -> None:
    """Defect 5: drop rows from an object and rewrite its manifest to match: the archive agrees
    with itself, but the table lacks rows no current object holds."""
    _cleaned(versioned)
    key = _objects(versioned)[0]
    lines = versioned.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    body = ("\n".join(lines[3:]) + "\n").encode()
    versioned.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    manifest = json.loads(versioned.s3.get_object(Bucket=BUCKET, Key=manifest_key(key))["Body"].read())
    manifest["keys"] = manifest["keys"][3:]
    manifest["count"] = len(manifest["keys"])
    manifest["sha256"] = hashlib.sha256(body).hexdigest()
    versioned.s3.put_object(Bucket=BUCKET, Key=manifest_key(key), Body=json.dumps(manifest).encode())
    checked = _verify(versioned)
    assert not checked.ok
    lost = [p for p in checked.problems if "in no current archive object" in p]
    assert len(lost) == 3, checked.problems


def test_deleting_object_manifest_and_summary_is_detected(versioned: Platform) -> None:
    _cleaned(versioned)
    for key in versioned.s3_keys("cleanup/"):
        versioned.s3.delete_object(Bucket=BUCKET, Key=key)
    checked = _verify(versioned)
    assert not checked.ok
    assert len([p for p in checked.problems if "in no current archive object" in p]) == 12


def test_a_row_archived_at_an_older_version_than_an_archive_once_held_is_detected(
    versioned: Platform,
) -> None:
    rows = _cleaned(versioned)
    key = _objects(versioned)[0]
    # Replace the object with an older-looking copy: a version lower than the one archived.
    lines = versioned.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    first = json.loads(lines[0])
    first["Item"]["version"] = {"N": "0"}
    lines[0] = json.dumps(first, sort_keys=True, separators=(",", ":"))
    versioned.s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())
    checked = _verify(versioned)
    assert any("archived at version 0" in p for p in checked.problems), checked.problems
    assert any(kid(rows[0]) in p or "version 0" in p for p in checked.problems)


def test_a_row_in_two_current_objects_of_different_folders_is_detected(versioned: Platform) -> None:
    _cleaned(versioned)
    key = _objects(versioned)[0]
    copy = key.replace(DATE.isoformat(), "2001-01-01")
    versioned.s3.copy_object(Bucket=BUCKET, Key=copy, CopySource={"Bucket": BUCKET, "Key": key})
    checked = _verify(versioned)
    assert any("in 2 current archive objects" in p for p in checked.problems), checked.problems


def test_a_date_with_no_run_says_so_and_fails(run: Any, platform: Platform) -> None:
    _cleaned(platform)
    result = run("cleanup", "--verify", "2001-01-01", "--json")
    assert result.exit_code != 0
    out = json.loads(result.stdout)
    assert out["no_run"] is True and any("no cleanup run" in p for p in out["problems"])


def test_glacier_objects_are_reported_with_how_to_restore_never_a_crash(run: Any, platform: Platform) -> None:
    _cleaned(platform)
    key = _objects(platform)[0]
    platform.s3.copy_object(
        Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": key}, StorageClass="GLACIER"
    )
    result = run("cleanup", "--verify", DATE.isoformat(), "--json")
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert key in out["unreadable_objects"]
    assert any("restore-object" in p and key in p for p in out["problems"])


def test_a_chunk_of_a_90_day_run_reconciled_by_a_120_day_run_verifies_under_both_cutoffs(
    versioned: Platform,
) -> None:
    rows = old_rows(8)
    versioned.put(rows)

    def crash(**_: Any) -> None:  # the 90-day run dies after its archive PUT
        raise RuntimeError("killed")

    versioned.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", crash)
    with pytest.raises(RuntimeError):
        _apply(versioned.dynamodb, versioned.s3)
    versioned.dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", crash)
    later = _apply(versioned.dynamodb, versioned.s3, older_than_days=120)
    assert later.recovered_objects == 1
    assert _verify(versioned).ok, _verify(versioned).problems
    checked_120 = _verify(versioned, cutoff_for(120).date())
    assert checked_120.ok, checked_120.problems
    assert_invariant(versioned, {kid(r): r for r in rows})
