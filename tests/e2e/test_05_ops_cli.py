"""Flow 5: ``ops report`` matches what was created today; ``ops cleanup`` archives then deletes exactly
the eligible items; ``ops links`` prints every on-call link."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from devkit.demo import Platform
from ops.core.links import flatten, stage_link
from tests.e2e.backdate import days_ago, put_transaction
from tests.e2e.flows import Ledger, OpsCli


def test_report_matches_the_created_transactions(platform: Platform, ledger: Ledger, ops_cli: OpsCli) -> None:
    items = [platform.item(txn) for txn in ledger.expected]
    assert all(items)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    report = ops_cli.json("report", "--date", today)
    assert report["date"] == today
    assert report["count"] == len(items)
    totals: Counter[str] = Counter()
    for item in items:
        totals[str(item["currency"])] += int(item["amount_minor"])  # type: ignore[index]
    assert {t["currency"]: t["amount_minor"] for t in report["totals"]} == dict(totals)
    assert report["status"] == dict(Counter(str(item["status"]) for item in items))  # type: ignore[index]
    # Read through the by-day index only, one query per shard at least, never a scan.
    assert report["source"]["index"] == platform.outputs["by_day_index_name"]
    assert report["source"]["queries"] >= int(platform.outputs["day_shard_count"])

    table = ops_cli("report", "--date", today)
    assert table.exit_code == 0 and today in table.output and "USD" in table.output


def _archived_ids(platform: Platform, prefix: str) -> set[str]:
    s3 = platform.client("s3")
    bucket = platform.outputs["archive_bucket_name"]
    found: set[str] = set()
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        if not obj["Key"].endswith(".jsonl"):
            continue  # manifests and run summaries
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        for line in text.splitlines():
            if line.strip():
                # One DynamoDB-JSON item per line, the format of DynamoDB's own S3 export.
                found.add(json.loads(line)["Item"]["transaction_id"]["S"])
    return found


def test_cleanup_archives_then_deletes_exactly_the_old_items(
    platform: Platform, ledger: Ledger, ops_cli: OpsCli
) -> None:
    old = [put_transaction(platform, days_ago(days)) for days in (200, 150, 91)]
    recent = [put_transaction(platform, days_ago(days)) for days in (89, 30)]

    dry = ops_cli.json("cleanup", "--older-than", "90d", "--dry-run")
    assert dry["dry_run"] is True and dry["matched"] == len(old) and dry["deleted"] == 0
    assert all(platform.item(i["transaction_id"]) for i in old)

    done = ops_cli.json("cleanup", "--older-than", "90d", "--yes")
    assert done["complete"] is True
    assert done["matched"] == len(old) and done["deleted"] == len(old)
    assert done["archived"] == len(old)
    date = done["cutoff"][:10]
    verified = ops_cli.json("cleanup", "--verify", date)
    assert verified["ok"] is True and verified["deleted_rows_verified"] >= len(old)
    for item in old:
        assert platform.item(item["transaction_id"]) is None
    for item in recent:
        assert platform.item(item["transaction_id"]) is not None
    for transaction_id in ledger.expected:
        assert platform.item(transaction_id) is not None
    prefix = done["archive_prefix"].split(f"s3://{platform.outputs['archive_bucket_name']}/", 1)[1]
    assert {i["transaction_id"] for i in old} <= _archived_ids(platform, prefix)
    assert not {i["transaction_id"] for i in recent} & _archived_ids(platform, "cleanup/")

    again = ops_cli.json("cleanup", "--older-than", "90d", "--yes")
    assert again["matched"] == 0 and again["deleted"] == 0
    for item in recent:
        platform.table("transactions").delete_item(
            Key={"transaction_id": item["transaction_id"], "timestamp": item["timestamp"]}
        )


def test_links_prints_every_oncall_link(platform: Platform, ops_cli: OpsCli) -> None:
    expected = stage_link(platform.outputs["api_invoke_url"]) + flatten(platform.outputs["oncall_links"])
    assert expected and any(link.group == "alarms" for link in expected)
    assert expected[0].group == "api" and expected[0].url.endswith("/_user_request_")
    shown = ops_cli.json("links")
    flat = {(group, name): url for group, names in shown.items() for name, url in names.items()}
    assert flat == {(link.group, link.name): link.url for link in expected}
    human = ops_cli("links")
    assert human.exit_code == 0
    squashed = "".join(human.output.split())
    # The table folds long URLs across lines; every one is there once whitespace is removed.
    missing = [link.url for link in expected if "".join(link.url.split()) not in squashed.replace("│", "")]
    assert not missing, missing[:5]


def test_dashboard_and_alarm_links_point_at_the_region(platform: Platform) -> None:
    links: dict[str, Any] = platform.outputs["oncall_links"]
    region = platform.outputs["region"]
    assert (
        f"region={region}" in links["dashboard"] and platform.outputs["dashboard_name"] in links["dashboard"]
    )
    assert set(links["alarms"]) == set(platform.outputs["alarm_names"].values())
