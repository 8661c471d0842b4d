"""Flow 14: the restore drill is one command. Payments go through the deployed API; ``ops restore``
restores the transactions and audit tables the platform wrote into new tables, as the module makes
them (CMK, GSIs, billing, PITR, tags, TTL), verifies the copies against the sources and prints the
cut-over; bad input against the live stack starts nothing.

moto only: it implements RestoreTableToPointInTime (as a copy of the current items; the shim
``shim_dynamodb_restore_overrides`` applies the KMS key and billing mode asked for). LocalStack
4.14's DynamoDB provider stores the PITR setting but has no RestoreTableToPointInTime. moto's
restorable window never moves past the moment PITR was enabled (at apply): the drill re-enables
PITR after the payments, so that T falls after them, as it would on AWS minutes later.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from devkit.demo import Platform
from devkit.emulator.endpoints import selected_backend
from tests.e2e.flows import Ledger, OpsCli

pytestmark = pytest.mark.skipif(
    selected_backend() != "moto",
    reason="RestoreTableToPointInTime: moto has it; LocalStack 4.14 stores the PITR flag only",
)

SETTLE_S = 2.0


def _restorable_now(dynamodb: Any, table: str) -> dt.datetime:
    """Re-enable PITR so moto's (static) latest restorable time is now; returns it."""
    for enabled in (False, True):
        dynamodb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled}
        )
    window = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    latest: dt.datetime = window["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    return latest


def test_restore_drill_restores_verifies_and_prints_the_cutover(
    platform: Platform, ledger: Ledger, ops_cli: OpsCli
) -> None:
    created = []
    for amount in ("11.00", "12.00", "13.00"):
        response = platform.create(Platform.payment(amount, "USD"))
        assert response.status == 202, response.body
        created.append(ledger.add(response.json["transaction_id"], "COMPLETED"))
    for transaction_id in created:
        assert platform.wait_for_status(transaction_id)["status"] == "COMPLETED"
    time.sleep(SETTLE_S + 1)  # every item's last change is now at least SETTLE_S before T

    dynamodb = platform.client("dynamodb")
    outputs = platform.outputs
    restored: list[str] = []
    try:
        for key in ("transactions", "audit"):
            source = outputs[f"{key}_table_name"]
            to_time = _restorable_now(dynamodb, source).isoformat()
            target = f"{source}-drill"
            argv = ("restore", "--table", key, "--to-time", to_time, "--target", target)

            dry = ops_cli.json(*argv)
            assert dry["dry_run"] is True and dry["started"] is False
            assert target not in dynamodb.list_tables()["TableNames"]

            drill = ops_cli.json(
                *argv, "--settle", str(SETTLE_S), "--poll", "0.5", "--timeout", "120", "--yes"
            )
            restored.append(target)
            assert drill["ok"] is True, drill
            settings = {row["setting"]: row for row in drill["settings"]}
            assert all(row["ok"] for row in settings.values()), settings
            source_table = dynamodb.describe_table(TableName=source)["Table"]
            assert settings["kms_key"]["restored"] == source_table["SSEDescription"]["KMSMasterKeyArn"]
            assert settings["billing_mode"]["restored"] == "PAY_PER_REQUEST"
            assert settings["point_in_time_recovery"]["restored"] == "ENABLED"
            assert settings["ttl_attribute"]["restored"] == "expires_at"
            assert settings["tags"]["restored"]["Name"] == target
            check = drill["verification"]
            # At least the three payments (their items; their audit events: several each).
            assert check["compared"] >= 3 and check["missing"] == 0 and check["mismatched"] == 0
            assert check["source_hash"] == check["restored_hash"]
            if key == "transactions":
                assert outputs["by_day_index_name"] in settings["indexes"]["restored"]
                assert check["requests"]["query"] >= 2 * int(outputs["day_shard_count"])
            assert drill["cutover"]["apply"] == f"terraform apply -var '{key}_table_override={target}'"

            again = ops_cli(*argv, "--yes")
            assert again.exit_code == 2, again.output
            assert f"target table {target} already exists" in again.stderr
            future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
            late = ops_cli("restore", "--table", key, "--to-time", future, "--yes")
            assert late.exit_code == 2 and "in the future" in late.stderr
    finally:
        for target in restored:
            dynamodb.delete_table(TableName=target)
