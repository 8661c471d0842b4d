"""``ops restore``: bad input starts nothing (exit 2); a drill restores with the source's CMK, GSIs,
billing, PITR, tags and TTL, verifies the copy against the source and prints the cut-over.

moto keeps no history: its RestoreTableToPointInTime copies the *current* items. The time semantics
are tested with recorded items instead: the items written before T are in the source when the copy
is made (the copy is the table at T), and what happens "after T" is done to the source afterwards —
an item changed, one deleted, one created — exactly what the verification must tell apart from a
restore that lost or altered data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from click.testing import Result
from ops_testkit import REGION, SHARDS, SUFFIX, TABLE, Platform, txn_item
from payments.clock import iso_from_ms

from devkit.emulator.shims.runtime import shim_dynamodb_restore_overrides
from ops.core.restore import TABLES, default_target, iso, parse_time, plan_restore
from tests.support import tables

AUDIT = f"payment-audit-{SUFFIX}"
IDEMPOTENCY = f"payment-idempotency-{SUFFIX}"


@pytest.fixture
def source(platform: Platform) -> dict[str, Any]:
    """The three tables as the data module makes them: CMK, PITR, TTL, a Name tag; transactions
    seeded with items created and last changed an hour or more before now."""
    shim_dynamodb_restore_overrides()
    kms = boto3.client("kms", region_name=REGION)
    key_arn = kms.create_key(Description="data")["KeyMetadata"]["Arn"]
    dynamodb = platform.dynamodb
    dynamodb.delete_table(TableName=TABLE)
    for name, schema in (
        (TABLE, tables.TRANSACTIONS),
        (AUDIT, tables.AUDIT),
        (IDEMPOTENCY, tables.IDEMPOTENCY),
    ):
        request = schema.create_request(name)
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn}
        request["Tags"] = [{"Key": "Name", "Value": name}, {"Key": "Service", "Value": "payments"}]
        dynamodb.create_table(**request)
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    now = dt.datetime.now(dt.UTC)
    items = []
    for n in range(12):
        created = int((now - dt.timedelta(hours=1, minutes=-n)).timestamp() * 1000)
        items.append(txn_item(n, created, extra={"updated_at": {"S": iso_from_ms(created + 1000)}}))
    platform.put(items)
    for n in range(3):
        at = iso_from_ms(int(items[n]["timestamp"]["N"]))
        dynamodb.put_item(
            TableName=AUDIT,
            Item={
                "transaction_id": items[n]["transaction_id"],
                "event_id": {"S": f"{at}#{n}"},
                "at": {"S": at},
                "to_status": {"S": "PENDING"},
            },
        )
    latest = {}
    for key, name in (("transactions", TABLE), ("audit", AUDIT), ("idempotency", IDEMPOTENCY)):
        window = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        latest[key] = window["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    return {"key_arn": key_arn, "items": items, "latest": latest, "dynamodb": dynamodb}


def _t(source: dict[str, Any], table: str = "transactions") -> str:
    """T: moto's latest restorable time of the table (it stays at the moment PITR was enabled, and
    equals the earliest one)."""
    return str(source["latest"][table].isoformat())


def _tables(dynamodb: Any) -> list[str]:
    return sorted(dynamodb.list_tables()["TableNames"])


def _bad(run: Callable[..., Result], *argv: str) -> Result:
    result = run("restore", *argv)
    assert result.exit_code == 2, result.output
    return result


# -- bad input: one line, exit 2, nothing started -------------------------------------------------


def test_unknown_table_is_a_usage_error(run: Callable[..., Result], source: dict[str, Any]) -> None:
    before = _tables(source["dynamodb"])
    result = _bad(run, "--table", "ledger", "--to-time", _t(source), "--yes")
    assert "ledger" in result.stderr
    assert _tables(source["dynamodb"]) == before


def test_malformed_time_is_a_usage_error(run: Callable[..., Result], source: dict[str, Any]) -> None:
    result = _bad(run, "--table", "transactions", "--to-time", "yesterday", "--yes")
    assert "ISO-8601" in result.stderr


def test_time_in_the_future_starts_nothing(run: Callable[..., Result], source: dict[str, Any]) -> None:
    before = _tables(source["dynamodb"])
    future = iso(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    result = _bad(run, "--table", "transactions", "--to-time", future, "--yes")
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"--to-time {future} is in the future" in result.stderr
    assert _tables(source["dynamodb"]) == before


def test_time_before_the_earliest_restorable_time_starts_nothing(
    run: Callable[..., Result], source: dict[str, Any]
) -> None:
    before = _tables(source["dynamodb"])
    early = iso(source["latest"]["audit"] - dt.timedelta(days=1))
    result = _bad(run, "--table", "audit", "--to-time", early, "--yes")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "before the earliest restorable time" in result.stderr
    assert _tables(source["dynamodb"]) == before


def test_time_after_the_latest_restorable_time_starts_nothing(source: dict[str, Any]) -> None:
    later = source["latest"]["transactions"] + dt.timedelta(seconds=30)
    with pytest.raises(Exception, match="after the latest restorable time"):
        plan_restore(
            source["dynamodb"],
            TABLES["transactions"],
            TABLE,
            later,
            now=later + dt.timedelta(minutes=1),
        )


def test_existing_target_starts_nothing(run: Callable[..., Result], source: dict[str, Any]) -> None:
    before = _tables(source["dynamodb"])
    result = _bad(run, "--table", "transactions", "--to-time", _t(source), "--target", AUDIT, "--yes")
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"target table {AUDIT} already exists" in result.stderr
    assert _tables(source["dynamodb"]) == before


def test_target_named_like_the_source_or_invalid_starts_nothing(
    run: Callable[..., Result], source: dict[str, Any]
) -> None:
    before = _tables(source["dynamodb"])
    assert (
        "already exists"
        in _bad(run, "--table", "transactions", "--to-time", _t(source), "--target", TABLE, "--yes").stderr
    )
    assert (
        "not a DynamoDB table name"
        in _bad(run, "--table", "transactions", "--to-time", _t(source), "--target", "x!", "--yes").stderr
    )
    assert _tables(source["dynamodb"]) == before


def test_source_without_pitr_starts_nothing(run: Callable[..., Result], source: dict[str, Any]) -> None:
    source["dynamodb"].update_continuous_backups(
        TableName=IDEMPOTENCY, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    before = _tables(source["dynamodb"])
    result = _bad(run, "--table", "idempotency", "--to-time", _t(source, "idempotency"), "--yes")
    assert "point-in-time recovery is off" in result.stderr
    assert _tables(source["dynamodb"]) == before


def test_missing_source_table_is_an_operational_error(
    run: Callable[..., Result], source: dict[str, Any]
) -> None:
    source["dynamodb"].delete_table(TableName=AUDIT)
    result = run("restore", "--table", "audit", "--to-time", _t(source, "audit"), "--yes")
    assert result.exit_code == 1
    assert f"source table {AUDIT} does not exist" in result.stderr


def test_time_parsing_accepts_z_offsets_and_naive_utc() -> None:
    expected = dt.datetime(2026, 3, 14, 9, 55, tzinfo=dt.UTC)
    assert parse_time("2026-03-14T09:55:00Z") == expected
    assert parse_time("2026-03-14T10:55:00+01:00") == expected
    assert parse_time("2026-03-14T09:55:00") == expected
    assert (
        default_target("payment-transactions-prod", expected) == "payment-transactions-prod-r20260314-095500"
    )


# -- dry run ------------------------------------------------------------------------------------


def test_dry_run_is_the_default_and_starts_nothing(
    run: Callable[..., Result], source: dict[str, Any]
) -> None:
    before = _tables(source["dynamodb"])
    result = run("restore", "--table", "transactions", "--to-time", _t(source), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dry_run"] is True and data["started"] is False
    assert data["plan"]["source"] == TABLE
    assert data["plan"]["kms_key_arn"] == source["key_arn"]
    assert sorted(data["plan"]["indexes"]) == ["by-customer", "by-day", "by-merchant"]
    assert (
        data["cutover"]["apply"]
        == f"terraform apply -var 'transactions_table_override={data['plan']['target']}'"
    )
    assert _tables(source["dynamodb"]) == before
    human = run("restore", "--table", "transactions", "--to-time", _t(source))
    assert human.exit_code == 0
    assert "DRY RUN" in human.stdout and "nothing was started" in human.stderr


def test_yes_has_no_environment_twin(run: Callable[..., Result], source: dict[str, Any]) -> None:
    before = _tables(source["dynamodb"])
    result = run(
        "restore",
        env={
            "OPS_RESTORE_YES": "1",
            "OPS_RESTORE_TABLE": "audit",
            "OPS_RESTORE_TO_TIME": _t(source, "audit"),
        },
    )
    assert result.exit_code == 0, result.output
    assert "nothing was started" in result.stderr
    assert _tables(source["dynamodb"]) == before


# -- the drill ----------------------------------------------------------------------------------


def _after_t(source: dict[str, Any]) -> None:
    """What happens to the source after T: one item changed, one deleted, one created."""
    dynamodb, items = source["dynamodb"], source["items"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    changed = dict(items[0], status={"S": "FAILED"}, updated_at={"S": iso(later)})
    dynamodb.put_item(TableName=TABLE, Item=changed)
    dynamodb.delete_item(
        TableName=TABLE,
        Key={"transaction_id": items[1]["transaction_id"], "timestamp": items[1]["timestamp"]},
    )
    created = int(later.timestamp() * 1000)
    dynamodb.put_item(TableName=TABLE, Item=txn_item(99, created, extra={"updated_at": {"S": iso(later)}}))


def test_drill_restores_as_the_source_verifies_and_prints_the_cutover(
    run: Callable[..., Result], source: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops.core.restore as core

    # The copy is the table at T; then the source moves on.
    original_start = core.start_restore

    def start_then_damage(dynamodb: Any, plan: Any) -> Any:
        described = original_start(dynamodb, plan)
        _after_t(source)
        return described

    monkeypatch.setattr("ops.cli.restore.start_restore", start_then_damage)
    target = "payment-transactions-test-drill"
    result = run(
        "restore",
        "--table",
        "transactions",
        "--to-time",
        _t(source),
        "--target",
        target,
        "--settle",
        "0",
        "--poll",
        "0.1",
        "--yes",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["started"] is True
    settings = {row["setting"]: row for row in data["settings"]}
    assert all(row["ok"] for row in settings.values()), settings
    assert settings["kms_key"]["restored"] == source["key_arn"]
    assert settings["billing_mode"]["restored"] == "PAY_PER_REQUEST"
    assert settings["point_in_time_recovery"]["restored"] == "ENABLED"
    assert settings["ttl_attribute"]["restored"] == "expires_at"
    tags = settings["tags"]["restored"]
    assert tags["Name"] == target and tags["Service"] == "payments" and tags["RestoredFrom"] == TABLE
    check = data["verification"]
    # Twelve items created before T: eleven still in the source, one changed since T (not compared),
    # one deleted since T; the one created after T is outside the window on both sides.
    assert check["compared"] == 10
    assert check["changed_since"] == 1
    assert check["deleted_since"] == 1
    assert check["missing"] == 0 and check["mismatched"] == 0
    assert check["source_hash"] == check["restored_hash"]
    assert sum(c["restored"] for c in check["counts"].values()) == 12
    assert sum(c["source"] for c in check["counts"].values()) == 11
    assert all("#" in group for group in check["counts"])
    assert check["requests"]["query"] >= 2 * SHARDS  # per day shard, both tables
    assert data["cutover"]["apply"] == f"terraform apply -var 'transactions_table_override={target}'"
    assert TABLE in data["cutover"]["cut_back"]


def test_a_copy_that_lost_or_altered_an_item_fails_the_drill(
    run: Callable[..., Result], source: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops.core.restore as core

    original_start = core.start_restore
    items = source["items"]

    def start_then_corrupt_the_copy(dynamodb: Any, plan: Any) -> Any:
        described = original_start(dynamodb, plan)
        key = {"transaction_id": items[2]["transaction_id"], "timestamp": items[2]["timestamp"]}
        dynamodb.delete_item(TableName=plan.target, Key=key)
        dynamodb.put_item(TableName=plan.target, Item=dict(items[3], amount_minor={"N": "1"}))
        return described

    monkeypatch.setattr("ops.cli.restore.start_restore", start_then_corrupt_the_copy)
    result = run(
        "restore",
        "--table",
        "transactions",
        "--to-time",
        _t(source),
        "--settle",
        "0",
        "--poll",
        "0.1",
        "--yes",
    )
    assert result.exit_code == 1, result.output
    assert "DIFFERENT" in result.stdout
    assert items[2]["transaction_id"]["S"] in result.stdout  # listed as missing
    assert items[3]["transaction_id"]["S"] in result.stdout  # listed as different
    assert "terraform apply -var 'transactions_table_override=" in result.stdout


def test_audit_drill_verifies_by_day_with_a_scan(run: Callable[..., Result], source: dict[str, Any]) -> None:
    result = run(
        "restore",
        "--table",
        "audit",
        "--to-time",
        _t(source, "audit"),
        "--settle",
        "0",
        "--poll",
        "0.1",
        "--yes",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["verification"]["compared"] == 3
    assert data["verification"]["requests"]["scan"] == 2
    assert data["plan"]["target"].startswith(f"{AUDIT}-r")
    assert data["cutover"]["apply"] == f"terraform apply -var 'audit_table_override={data['plan']['target']}'"


def test_a_copy_that_never_becomes_active_times_out(source: dict[str, Any]) -> None:
    from ops.core.restore import RestoreTimeout, wait_until_active

    class Creating:
        def describe_table(self, TableName: str) -> dict[str, Any]:
            return {"Table": {"TableName": TableName, "TableStatus": "CREATING"}}

    clock = iter(float(n) for n in range(100))
    polls: list[str] = []
    with pytest.raises(RestoreTimeout, match="still CREATING after"):
        wait_until_active(
            Creating(),
            "t",
            timeout_s=5,
            poll_s=1,
            on_poll=lambda status, _e: polls.append(status),
            sleep=lambda _s: None,
            clock=lambda: next(clock),
        )
    assert 1 < len(polls) <= 6


def test_restored_tables_are_listed_with_their_source_and_state(
    run: Callable[..., Result], source: dict[str, Any]
) -> None:
    from ops.core.restore import restored_tables

    dynamodb = source["dynamodb"]
    assert restored_tables(dynamodb, "payment-", SUFFIX) == []
    target = f"{AUDIT}-copy"
    result = run("restore", "--table", "audit", "--to-time", _t(source, "audit"), "--target", target, "--yes")
    assert result.exit_code == 0, result.output
    dynamodb.create_table(**tables.AUDIT.create_request("payment-audit-other"))  # another environment
    (listed,) = restored_tables(dynamodb, "payment-", SUFFIX)
    assert listed["table"] == target and listed["source"] == AUDIT
    assert listed["status"] == "ACTIVE" and listed["in_progress"] is False


def test_status_lists_the_environments_restores(run: Callable[..., Result], source: dict[str, Any]) -> None:
    target = f"{AUDIT}-copy"
    result = run("restore", "--table", "audit", "--to-time", _t(source, "audit"), "--target", target, "--yes")
    assert result.exit_code == 0, result.output
    status = run("status", "--json")
    data = json.loads(status.stdout)
    assert data["checks"]["restores"] == "OK", data
    (listed,) = data["restores"]
    assert listed["table"] == target and listed["source"] == AUDIT and listed["in_progress"] is False
    shown = run("status")
    assert f"restore: {target} from {AUDIT}" in shown.stdout


def test_a_restore_still_running_is_a_warning_in_status(
    run: Callable[..., Result], source: dict[str, Any], client_hooks: Any
) -> None:
    """DynamoDB describes a table being restored as CREATING with ``RestoreInProgress`` (moto's
    restores finish at once, so the answer is made to say so): ``ops status`` warns, naming it."""
    target = f"{AUDIT}-copy"
    assert (
        run(
            "restore", "--table", "audit", "--to-time", _t(source, "audit"), "--target", target, "--yes"
        ).exit_code
        == 0
    )

    def register(client: Any) -> None:
        def still_running(parsed: dict[str, Any], **_: Any) -> None:
            table = parsed.get("Table", {})
            if table.get("TableName") == target:
                table["TableStatus"] = "CREATING"
                table.setdefault("RestoreSummary", {})["RestoreInProgress"] = True

        if client.meta.service_model.service_name == "dynamodb":
            client.meta.events.register("after-call.dynamodb.DescribeTable", still_running)

    client_hooks(register)
    status = run("status", "--json")
    data = json.loads(status.stdout)
    assert data["checks"]["restores"] == "WARNING", data
    (listed,) = data["restores"]
    assert listed["table"] == target and listed["in_progress"] is True
    assert f"WARNING: restore into {target} (from {AUDIT}) still running" in data["reasons"]


def test_an_enabled_pitr_without_a_reported_window_is_refused_in_one_line(source: dict[str, Any]) -> None:
    """LocalStack stores the PITR flag only: no Earliest/LatestRestorableDateTime. AWS always reports
    both; without them there is no window to check the time against, so nothing is started."""

    class WithoutWindow:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def describe_continuous_backups(self, **kwargs: Any) -> dict[str, Any]:
            answer = self._real.describe_continuous_backups(**kwargs)
            window = answer["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
            window.pop("EarliestRestorableDateTime", None)
            window.pop("LatestRestorableDateTime", None)
            return answer

    to_time = source["latest"]["transactions"] - dt.timedelta(seconds=1)
    with pytest.raises(Exception, match="no restorable time window") as raised:
        plan_restore(WithoutWindow(source["dynamodb"]), TABLES["transactions"], TABLE, to_time)
    assert "\n" not in str(raised.value)
