"""``ops report`` and ``payments.jobs.report``: exact totals, only the day's items, every output form."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from typing import Any

import pytest
from ops_testkit import BUCKET, TABLE, Platform, epoch_ms, txn_item
from payments.jobs.report import build_report
from payments.shards import MAX_DAY_SHARDS, day_shard_keys

DAY = dt.date(2026, 3, 14)


def _mixed_day(platform: Platform, day: dt.date = DAY) -> None:
    DAY = day
    items = [
        # JPY has no minor unit, KWD three decimals: totals must come out exact.
        txn_item(1, epoch_ms(DAY, 0, 5), amount_minor=1050, currency="USD", merchant="m_a"),
        txn_item(2, epoch_ms(DAY, 0, 45), amount_minor=1, currency="USD", merchant="m_a", status="FAILED"),
        txn_item(3, epoch_ms(DAY, 9), amount_minor=123456, currency="JPY", merchant="m_b"),
        txn_item(4, epoch_ms(DAY, 9, 30), amount_minor=1, currency="JPY", merchant="m_a", status="REJECTED"),
        txn_item(5, epoch_ms(DAY, 23, 59), amount_minor=1001, currency="KWD", merchant="m_c"),
        txn_item(6, epoch_ms(DAY, 23, 1), amount_minor=999_999_999, currency="KWD", merchant="m_a"),
        txn_item(7, epoch_ms(DAY, 12), amount_minor=2500, currency="USD", merchant="m_b", status="PENDING"),
        # Neighbouring days must not be counted.
        txn_item(8, epoch_ms(DAY - dt.timedelta(days=1), 23, 59), amount_minor=7, currency="USD"),
        txn_item(9, epoch_ms(DAY + dt.timedelta(days=1), 0, 0), amount_minor=7, currency="USD"),
    ]
    platform.put(items)


def test_totals_are_exact_per_currency_for_mixed_exponents(run: Any, platform: Platform) -> None:
    _mixed_day(platform)
    result = run("report", "--date", DAY.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    totals = {t["currency"]: t for t in report["totals"]}
    assert totals["USD"]["amount_minor"] == 3551
    assert totals["USD"]["amount"] == "35.51"
    assert totals["JPY"]["amount_minor"] == 123457
    assert totals["JPY"]["amount"] == "123457"
    assert totals["JPY"]["formatted"] == "123,457 JPY"
    assert totals["KWD"]["amount_minor"] == 1_000_001_000
    assert totals["KWD"]["formatted"] == "1,000,001.000 KWD"
    assert {c: t["count"] for c, t in totals.items()} == {"USD": 3, "JPY": 2, "KWD": 2}
    assert report["count"] == 7
    assert report["status"] == {"COMPLETED": 4, "FAILED": 1, "PENDING": 1, "REJECTED": 1}
    # The fraud rejection is a business outcome: it is not a failure and not in the failure rate.
    assert report["failed"] == 1
    assert report["failure_rate"] == round(1 / 7, 6)
    assert report["rejected"] == 1
    assert report["rejection_rate"] == round(1 / 7, 6)
    assert report["failed_statuses"] == ["FAILED"] and report["rejected_statuses"] == ["REJECTED"]
    settled = {t["currency"]: t["amount_minor"] for t in report["settled_totals"]}
    assert settled == {"USD": 1050, "JPY": 123456, "KWD": 1_000_001_000}
    assert report["top_merchants"][0]["merchant_id"] == "m_a"
    assert report["top_merchants"][0]["count"] == 4
    hourly = {h["hour"]: h["count"] for h in report["hourly"]}
    assert len(report["hourly"]) == 24
    assert hourly[0] == 2 and hourly[9] == 2 and hourly[12] == 1 and hourly[23] == 2
    assert sum(hourly.values()) == 7


def test_reads_only_the_days_items_with_one_query_per_shard_and_no_scan(platform: Platform) -> None:
    _mixed_day(platform)
    # Plenty of other days in the table: the report must not touch them.
    platform.put([txn_item(100 + i, epoch_ms(DAY - dt.timedelta(days=1 + i % 30))) for i in range(300)])
    calls: Counter[str] = Counter()
    platform.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]])
    )
    report = build_report(platform.dynamodb, TABLE, "by-day", 16, DAY)
    assert report.count == 7
    assert report.items_read == 7
    assert calls == Counter({"Query": 16})


def test_paginates_each_shard_past_the_1mb_page_limit(platform: Platform) -> None:
    # 60 items of ~20 KB on one shard: more than one 1 MB page.
    padding = {"description": {"S": "x" * 20_000}}
    platform.put(
        [txn_item(i, epoch_ms(DAY, i % 24), amount_minor=i, shards=1, extra=padding) for i in range(60)]
    )
    calls: Counter[str] = Counter()
    platform.dynamodb.meta.events.register("before-call.dynamodb.Query", lambda **_: calls.update(["Query"]))
    report = build_report(platform.dynamodb, TABLE, "by-day", 1, DAY)
    assert report.count == 60
    assert report.totals_minor == {"USD": sum(range(60))}
    assert calls["Query"] >= 2


def test_shard_keys_match_the_writer_format() -> None:
    assert day_shard_keys(DAY, 3) == ["2026-03-14#00", "2026-03-14#01", "2026-03-14#02"]
    assert day_shard_keys(DAY, 16)[-1] == "2026-03-14#15"


def test_upload_writes_the_day_report_to_the_archive_bucket(run: Any, platform: Platform) -> None:
    day = _recent_day()
    _mixed_day(platform, day)
    result = run("report", "--date", day.isoformat(), "--upload", "--json")
    assert result.exit_code == 0, result.output
    key = f"reports/{day.isoformat()}.json"
    assert json.loads(result.stdout)["uploaded_to"] == f"s3://{BUCKET}/{key}"
    stored = platform.s3_json(key)
    assert stored["count"] == 7
    assert stored["date"] == day.isoformat()
    head = platform.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/json"


def test_csv_output_has_one_fact_per_row(run: Any, platform: Platform) -> None:
    _mixed_day(platform)
    result = run("report", "--date", DAY.isoformat(), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    totals = {r["currency"]: r for r in rows if r["section"] == "total" and r["key"] == "all"}
    assert totals["KWD"]["amount"] == "1000001.000"
    assert totals["JPY"]["amount_minor"] == "123457"
    assert {r["key"]: r["count"] for r in rows if r["section"] == "status"}["FAILED"] == "1"
    summary = {r["key"]: r for r in rows if r["section"] == "summary"}
    assert summary["failed"]["count"] == "1" and summary["rejected"]["count"] == "1"
    assert summary["failure_rate"]["amount"] == f"{1 / 7:.6f}"
    assert len([r for r in rows if r["section"] == "hour"]) == 24
    # The long format's contract: a fact sits in its own column, every other column empty.
    summary_rows = [row for row in csv.reader(io.StringIO(result.stdout)) if row[0] == "summary"]
    assert summary_rows[:2] == [
        ["summary", "as_of", "", "", "", summary["as_of"]["amount"]],
        ["summary", "transactions", "", "7", "", ""],
    ]
    assert summary["as_of"]["amount"].endswith("Z")


def test_table_output_shows_formatted_totals(run: Any, platform: Platform) -> None:
    _mixed_day(platform)
    result = run("report", "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    assert "1,000,001.000 KWD" in result.stdout
    assert "123,457 JPY" in result.stdout
    assert "35.51 USD" in result.stdout
    assert "failed 1  failure rate 14.29%" in result.stdout
    assert "rejected 1 (14.29%)" in result.stdout


def test_default_date_is_yesterday_utc(run: Any, platform: Platform) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    platform.put([txn_item(1, epoch_ms(yesterday, 3), amount_minor=42)])
    result = run("report", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["date"] == yesterday.isoformat()
    assert report["count"] == 1


def test_empty_day_reports_zero_without_dividing_by_zero(run: Any, platform: Platform) -> None:
    result = run("report", "--date", "2020-01-01", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 0
    assert report["failure_rate"] == 0
    assert report["rejected"] == 0 and report["rejection_rate"] == 0


def test_names_from_flags_and_top(run: Any, platform: Platform) -> None:
    _mixed_day(platform)
    result = run(
        "report",
        "--date",
        DAY.isoformat(),
        "--table",
        TABLE,
        "--index",
        "by-day",
        "--shards",
        "16",
        "--top",
        "1",
        "--json",
        outputs=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [m["merchant_id"] for m in report["top_merchants"]] == ["m_a"]
    source = report["source"]
    assert {k: source[k] for k in ("table", "index", "shards", "queries", "items_read")} == {
        "table": TABLE,
        "index": "by-day",
        "shards": 16,
        "queries": 16,
        "items_read": 7,
    }
    assert source["writer_shards"] is None
    assert "shards 16..99 hold no row of 2026-03-14: none is missed" in result.stderr


# -- defect 4: the shard count changed ----------------------------------------------------------
def _written_with(platform: Platform, shards: int, count: int = 200) -> None:
    platform.put([txn_item(i, epoch_ms(DAY, i % 24, i % 60), shards=shards) for i in range(count)])


def _outputs_with(platform: Platform, tmp_path: Any, **values: Any) -> str:
    outputs = json.loads(platform.outputs_file.read_text())
    for key, value in values.items():
        if value is None:
            outputs.pop(key, None)
        else:
            outputs[key] = {"value": value, "type": "number", "sensitive": False}
    path = tmp_path / "outputs-changed.json"
    path.write_text(json.dumps(outputs))
    return str(path)


@pytest.mark.parametrize(("written", "deployed"), [(16, 8), (16, 4), (64, 16), (4, 64), (100, 1)])
def test_a_day_written_under_another_shard_count_is_counted_in_full(
    run: Any, platform: Platform, tmp_path: Any, written: int, deployed: int
) -> None:
    _written_with(platform, written)
    outputs = _outputs_with(platform, tmp_path, day_shard_count=deployed)
    result = run("--outputs-file", outputs, "report", "--date", DAY.isoformat(), "--json", outputs=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 200
    assert report["source"]["writer_shards"] == deployed
    assert report["source"]["shards"] == MAX_DAY_SHARDS
    if written > deployed:
        assert "beyond the deployed" in result.stderr


def test_without_outputs_the_shard_count_is_not_guessed(run: Any, platform: Platform, tmp_path: Any) -> None:
    _written_with(platform, 64)
    outputs = _outputs_with(platform, tmp_path, day_shard_count=None)
    result = run("--outputs-file", outputs, "report", "--date", DAY.isoformat(), "--json", outputs=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 200  # every shard any deployment can write was queried
    assert report["source"]["queries"] == MAX_DAY_SHARDS
    assert report["source"]["writer_shards"] is None


def test_shards_below_the_deployed_count_are_refused(run: Any, platform: Platform) -> None:
    _mixed_day(platform)
    result = run("report", "--date", DAY.isoformat(), "--shards", "4", "--json")
    assert result.exit_code == 2
    assert "below the deployed day_shard_count (16)" in result.output


def test_report_prints_an_as_of_time(run: Any, platform: Platform) -> None:
    _mixed_day(platform)
    table = run("report", "--date", DAY.isoformat())
    assert "(as of 20" in table.stdout
    data = json.loads(run("report", "--date", DAY.isoformat(), "--json").stdout)
    assert dt.datetime.fromisoformat(data["as_of"]) <= dt.datetime.now(dt.UTC)
    rows = list(csv.reader(io.StringIO(run("report", "--date", DAY.isoformat(), "--format", "csv").stdout)))
    assert rows[1][:2] == ["summary", "as_of"]


# -- defect 5: upload guards ----------------------------------------------------------------------
def _recent_day() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)


def test_upload_does_not_replace_a_stored_report_with_a_lower_count(run: Any, platform: Platform) -> None:
    day = _recent_day()
    rows = [txn_item(i, epoch_ms(day, i % 24)) for i in range(40)]
    platform.put(rows)
    assert run("report", "--date", day.isoformat(), "--upload", "--json").exit_code == 0
    key = f"reports/{day.isoformat()}.json"
    assert platform.s3_json(key)["count"] == 40
    for row in rows:  # e.g. a cleanup with a too short retention removed the rows
        platform.dynamodb.delete_item(
            TableName=TABLE, Key={k: row[k] for k in ("transaction_id", "timestamp")}
        )
    refused = run("report", "--date", day.isoformat(), "--upload", "--json")
    assert refused.exit_code == 1
    assert "counts 40 transactions, this report 0" in refused.stderr
    assert platform.s3_json(key)["count"] == 40
    env_force = run("report", "--date", day.isoformat(), "--upload", env={"OPS_REPORT_FORCE": "1"})
    assert env_force.exit_code == 1 and platform.s3_json(key)["count"] == 40
    forced = run("report", "--date", day.isoformat(), "--upload", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert platform.s3_json(key)["count"] == 0


def test_upload_of_an_equal_or_higher_count_replaces_the_stored_report(run: Any, platform: Platform) -> None:
    day = _recent_day()
    platform.put([txn_item(i, epoch_ms(day, 1)) for i in range(3)])
    assert run("report", "--date", day.isoformat(), "--upload").exit_code == 0
    assert run("report", "--date", day.isoformat(), "--upload").exit_code == 0
    platform.put([txn_item(10 + i, epoch_ms(day, 2)) for i in range(2)])
    assert run("report", "--date", day.isoformat(), "--upload").exit_code == 0
    assert platform.s3_json(f"reports/{day.isoformat()}.json")["count"] == 5


def test_upload_for_a_day_past_retention_needs_force(run: Any, platform: Platform) -> None:
    old_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=120)
    platform.put([txn_item(1, epoch_ms(old_day, 5))])
    refused = run("report", "--date", old_day.isoformat(), "--upload")
    assert refused.exit_code == 1
    assert "past the 90-day retention" in refused.stderr
    assert platform.s3_keys("reports/") == []
    assert run("report", "--date", old_day.isoformat(), "--upload", "--force").exit_code == 0
    assert platform.s3_json(f"reports/{old_day.isoformat()}.json")["count"] == 1


# -- issue 22, item 7: malformed amounts are flagged; --shards cannot undercount ---------------------
def _malformed_day(platform: Platform) -> list[str]:
    good = [txn_item(1, epoch_ms(DAY, 1), amount_minor=1000), txn_item(2, epoch_ms(DAY, 2), amount_minor=500)]
    as_text = txn_item(3, epoch_ms(DAY, 3))
    as_text["amount_minor"] = {"S": "1000"}
    missing = txn_item(4, epoch_ms(DAY, 4))
    del missing["amount_minor"]
    platform.put([*good, as_text, missing])
    return sorted(item["transaction_id"]["S"] for item in (as_text, missing))


def test_rows_with_a_string_or_missing_amount_are_counted_and_shown(run: Any, platform: Platform) -> None:
    bad = _malformed_day(platform)
    result = run("report", "--date", DAY.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 4
    assert report["malformed_amounts"] == {"count": 2, "transaction_ids": bad}
    assert {t["currency"]: t["amount_minor"] for t in report["totals"]} == {"USD": 1500}
    assert "2 transaction(s) of 2026-03-14 have a missing or non-numeric amount_minor" in result.stderr
    assert bad[0] in result.stderr

    table = run("report", "--date", DAY.isoformat())
    assert "2 transaction(s) without an integer amount_minor" in table.stdout
    rows = list(csv.reader(io.StringIO(run("report", "--date", DAY.isoformat(), "--format", "csv").stdout)))
    assert ["summary", "malformed_amounts", "", "2", "", ""] in rows


def test_a_clean_day_reports_no_malformed_amounts(platform: Platform) -> None:
    _mixed_day(platform)
    report = build_report(platform.dynamodb, TABLE, "by-day", MAX_DAY_SHARDS, DAY)
    assert report.malformed_amounts == 0 and report.to_dict()["malformed_amounts"]["count"] == 0


@pytest.mark.parametrize(("written", "deployed", "asked"), [(64, 16, 16), (16, None, 8), (100, 1, 50)])
def test_shards_below_the_spread_written_are_refused_whatever_the_deployed_count(
    run: Any, platform: Platform, tmp_path: Any, written: int, deployed: int | None, asked: int
) -> None:
    _written_with(platform, written)
    outputs = _outputs_with(platform, tmp_path, day_shard_count=deployed)
    argv = ("--outputs-file", outputs, "report", "--date", DAY.isoformat(), "--shards", str(asked), "--json")
    result = run(*argv, outputs=False)
    assert result.exit_code == 2, result.output
    assert f"--shards {asked} would undercount 2026-03-14" in result.output
    assert '"count"' not in result.stdout  # no report at all rather than a short one


def test_shards_covering_the_spread_written_count_everything(
    run: Any, platform: Platform, tmp_path: Any
) -> None:
    _written_with(platform, 16)
    outputs = _outputs_with(platform, tmp_path, day_shard_count=None)
    argv = ("--outputs-file", outputs, "report", "--date", DAY.isoformat(), "--shards", "16", "--json")
    result = run(*argv, outputs=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 200
