"""Point-in-time restore drill (``ops restore``): check, start, finish, wait, verify, cut over.

A restore always makes a **new** table; nothing here writes to the source table. The steps:

1. :func:`plan_restore` reads the source (key schema, GSIs, billing, KMS key, tags, TTL, deletion
   protection, restorable window) and refuses bad input before anything starts
   (:class:`RestoreInputError`: a time outside the window or in the future, PITR off, a target
   that exists or is not a table name).
2. :func:`start_restore` calls ``RestoreTableToPointInTime`` with the source's CMK
   (``SSESpecificationOverride``), billing mode and GSIs, so the copy is made as the module makes
   the table; :func:`wait_until_active` polls it (bounded) until the table and its GSIs are ACTIVE.
3. :func:`finish_restore` does what a restore does not copy: point-in-time recovery, the tags
   (``Name`` becomes the target's, plus ``RestoredFrom``/``RestoredTo``), TTL, deletion protection;
   :func:`check_settings` reads them back.
4. :func:`verify_restore` compares the restored table with the source over a window of days ending
   at T: items created at or before T, read per day shard of the ``by-day`` index (transactions) or
   by a filtered Scan (audit, idempotency: they have no time index). An item of the source whose
   last change is at least ``settle`` before T cannot have changed since T: the restored table must
   hold it byte for byte (one content hash per side, the differing keys listed). A source item
   missing from the copy fails the drill; a copy item missing from the source was deleted after T
   (the damage, or a cleanup run) and is reported, not failed.
5. :func:`cutover` is the ``terraform apply -var`` override that points the platform at the copy,
   and the step that cuts back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from payments.clock import datetime_from_iso, iso_from_datetime, iso_from_ms, ms_from_datetime, ms_from_iso
from payments.dynamo import scalar
from payments.jobs.calls import RequestCounter
from payments.shards import MAX_DAY_SHARDS, day_shard_keys
from payments.store.keys import key_id, key_names_of

from ops.core import OpsError

TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
MAX_PAGES = 10_000  # bound on loops driven by a remote service (1 MB pages)
MAX_LISTED = 10  # differing keys shown per kind
DEFAULT_WINDOW_DAYS = 2
DEFAULT_SETTLE_S = 60.0
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_POLL_S = 15.0


class RestoreInputError(OpsError):
    """Bad input found before anything started (``ops restore`` exits 2)."""


class RestoreTimeout(OpsError):
    """The restored table did not become ACTIVE in time (the restore goes on in AWS)."""


@dataclass(frozen=True)
class TableKind:
    """What the drill needs to know about one of the platform's tables."""

    key: str
    tf_variable: str  # root variable that points the platform at a restored copy
    time_attribute: str  # when the item was created: window membership
    changed_attribute: str  # when the item last changed (ISO-8601 UTC text on every table)
    epoch_ms: bool  # time_attribute is epoch milliseconds (N), else ISO-8601 UTC text (S)
    by_day: bool  # read through the by-day index, else a filtered Scan


TABLES: dict[str, TableKind] = {
    "transactions": TableKind(
        "transactions", "transactions_table_override", "timestamp", "updated_at", epoch_ms=True, by_day=True
    ),
    # Audit events and idempotency records are written once (an expired idempotency record is
    # replaced by a new one with a new created_at).
    "audit": TableKind("audit", "audit_table_override", "at", "at", epoch_ms=False, by_day=False),
    "idempotency": TableKind(
        "idempotency", "idempotency_table_override", "created_at", "created_at", epoch_ms=False, by_day=False
    ),
}


def iso(value: dt.datetime) -> str:
    """The platform's one UTC format (payments.clock)."""
    return iso_from_datetime(value)


def parse_time(text: str) -> dt.datetime:
    """The instant ``--to`` names, read by payments.clock (``2026-03-14T09:55:00Z``, an offset, or
    naive = UTC) as an aware UTC datetime; ValueError on anything else."""
    return datetime_from_iso(text)


def default_target(source: str, to_time: dt.datetime) -> str:
    """``<source>-r<YYYYmmdd>-<HHMMSS>``: the restore time in the name, never the source's name."""
    return f"{source}-r{to_time.astimezone(dt.UTC):%Y%m%d-%H%M%S}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(dynamodb: Any, table: str) -> dict[str, Any] | None:
    try:
        return dict(dynamodb.describe_table(TableName=table)["Table"])
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


# -- plan ---------------------------------------------------------------------------------------


@dataclass
class RestorePlan:
    kind: TableKind
    source: str
    source_arn: str
    target: str
    to_time: dt.datetime
    earliest: dt.datetime
    latest: dt.datetime
    key_schema: list[dict[str, str]]
    billing_mode: str
    kms_key_arn: str | None
    gsis: list[dict[str, Any]] = field(default_factory=list)
    lsis: list[dict[str, Any]] = field(default_factory=list)
    provisioned: dict[str, int] | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    ttl_attribute: str | None = None
    deletion_protection: bool = False

    def request(self) -> dict[str, Any]:
        """The ``RestoreTableToPointInTime`` request: the copy is made as the source is made."""
        request: dict[str, Any] = {
            "SourceTableName": self.source,
            "TargetTableName": self.target,
            "RestoreDateTime": self.to_time,
            "BillingModeOverride": self.billing_mode,
        }
        if self.gsis:
            request["GlobalSecondaryIndexOverride"] = self.gsis
        if self.lsis:
            request["LocalSecondaryIndexOverride"] = self.lsis
        if self.provisioned:
            request["ProvisionedThroughputOverride"] = self.provisioned
        if self.kms_key_arn:
            request["SSESpecificationOverride"] = {
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": self.kms_key_arn,
            }
        return request

    def target_tags(self) -> list[dict[str, str]]:
        """The source's tags (``aws:`` ones are AWS's own), named for the copy and marked as one."""
        tags = {t["Key"]: t["Value"] for t in self.tags if not t["Key"].startswith("aws:")}
        if "Name" in tags:
            tags["Name"] = self.target
        tags["RestoredFrom"] = self.source
        tags["RestoredTo"] = iso(self.to_time)
        return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.kind.key,
            "source": self.source,
            "target": self.target,
            "to_time": iso(self.to_time),
            "restorable": {"earliest": iso(self.earliest), "latest": iso(self.latest)},
            "billing_mode": self.billing_mode,
            "kms_key_arn": self.kms_key_arn,
            "indexes": [g["IndexName"] for g in self.gsis],
            "tags": {t["Key"]: t["Value"] for t in self.target_tags()},
            "ttl_attribute": self.ttl_attribute,
            "deletion_protection": self.deletion_protection,
        }


def _tags(dynamodb: Any, arn: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = []
    request: dict[str, Any] = {"ResourceArn": arn}
    for _ in range(MAX_PAGES):
        page = dynamodb.list_tags_of_resource(**request)
        tags.extend(page.get("Tags", []))
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return tags


def _index_override(index: Mapping[str, Any], provisioned: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "IndexName": index["IndexName"],
        "KeySchema": index["KeySchema"],
        "Projection": index["Projection"],
    }
    throughput = index.get("ProvisionedThroughput") or {}
    if provisioned and throughput:
        entry["ProvisionedThroughput"] = {
            "ReadCapacityUnits": int(throughput["ReadCapacityUnits"]),
            "WriteCapacityUnits": int(throughput["WriteCapacityUnits"]),
        }
    return entry


def plan_restore(
    dynamodb: Any,
    kind: TableKind,
    source: str,
    to_time: dt.datetime,
    target: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> RestorePlan:
    """Everything the restore needs, read from the source; raises :class:`RestoreInputError` for
    bad input (nothing has been started then)."""
    now = now or dt.datetime.now(dt.UTC)
    described = _describe(dynamodb, source)
    if described is None:
        raise OpsError(f"source table {source} does not exist (check --suffix / --tf-dir / --outputs-file)")
    pitr = dynamodb.describe_continuous_backups(TableName=source)["ContinuousBackupsDescription"]
    window = pitr.get("PointInTimeRecoveryDescription") or {}
    if window.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise RestoreInputError(f"point-in-time recovery is off on {source}: there is no history to restore")
    earliest, latest = window.get("EarliestRestorableDateTime"), window.get("LatestRestorableDateTime")
    if earliest is None or latest is None:
        # AWS always reports both for an enabled PITR; an emulator that only stores the flag does not.
        raise RestoreInputError(
            f"DynamoDB reports no restorable time window for {source} (PITR enabled but no "
            "EarliestRestorableDateTime/LatestRestorableDateTime): nothing can be restored"
        )
    if to_time > now:
        raise RestoreInputError(f"--to-time {iso(to_time)} is in the future (now {iso(now)})")
    if to_time < earliest:
        raise RestoreInputError(
            f"--to-time {iso(to_time)} is before the earliest restorable time of {source}, {iso(earliest)}"
        )
    if to_time > latest:
        raise RestoreInputError(
            f"--to-time {iso(to_time)} is after the latest restorable time of {source}, {iso(latest)} "
            "(PITR trails the present by about 5 minutes): pick that time or an earlier one"
        )
    target = target or default_target(source, to_time)
    if not TABLE_NAME.match(target):
        raise RestoreInputError(
            f"--target {target!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
        )
    if target == source or _describe(dynamodb, target) is not None:
        raise RestoreInputError(f"target table {target} already exists: pick another --target")
    billing = (described.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    provisioned = billing == "PROVISIONED"
    throughput = described.get("ProvisionedThroughput") or {}
    sse = described.get("SSEDescription") or {}
    kms = sse.get("KMSMasterKeyArn") if sse.get("SSEType") == "KMS" else None
    ttl = dynamodb.describe_time_to_live(TableName=source).get("TimeToLiveDescription") or {}
    return RestorePlan(
        kind=kind,
        source=source,
        source_arn=described["TableArn"],
        target=target,
        to_time=to_time,
        earliest=earliest,
        latest=latest,
        key_schema=list(described["KeySchema"]),
        billing_mode=billing,
        kms_key_arn=kms,
        gsis=[_index_override(g, provisioned) for g in described.get("GlobalSecondaryIndexes", [])],
        lsis=[_index_override(i, False) for i in described.get("LocalSecondaryIndexes", [])],
        provisioned=(
            {
                "ReadCapacityUnits": int(throughput.get("ReadCapacityUnits", 0)),
                "WriteCapacityUnits": int(throughput.get("WriteCapacityUnits", 0)),
            }
            if provisioned and throughput.get("ReadCapacityUnits")
            else None
        ),
        tags=_tags(dynamodb, described["TableArn"]),
        ttl_attribute=ttl.get("AttributeName")
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        else None,
        deletion_protection=bool(described.get("DeletionProtectionEnabled")),
    )


# -- start, wait, finish ------------------------------------------------------------------------


def start_restore(dynamodb: Any, plan: RestorePlan) -> dict[str, Any]:
    """Start the restore; returns the new table's description."""
    return dict(dynamodb.restore_table_to_point_in_time(**plan.request())["TableDescription"])


def _ready(table: Mapping[str, Any]) -> bool:
    indexes = table.get("GlobalSecondaryIndexes", [])
    restoring = (table.get("RestoreSummary") or {}).get("RestoreInProgress", False)
    return (
        table.get("TableStatus") == "ACTIVE"
        and all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes)
        and not restoring
    )


def wait_until_active(
    dynamodb: Any,
    target: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
    on_poll: Callable[[str, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the table and its GSIs are ACTIVE; :class:`RestoreTimeout` after ``timeout_s``."""
    started = clock()
    while True:
        table = _describe(dynamodb, target)
        elapsed = clock() - started
        status = str(table.get("TableStatus")) if table else "NOT FOUND"
        if on_poll:
            on_poll(status, elapsed)
        if table is not None and _ready(table):
            return table
        if elapsed >= timeout_s:
            raise RestoreTimeout(
                f"{target} is still {status} after {int(elapsed)} s; the restore goes on in AWS. When "
                f"`aws dynamodb describe-table --table-name {target}` shows ACTIVE, finish it by hand "
                "(docs/runbooks.md, restore: PITR, tags, TTL) or delete it and rerun with a longer --timeout"
            )
        sleep(min(poll_s, max(timeout_s - elapsed, 0.0)))


def finish_restore(dynamodb: Any, plan: RestorePlan, target_arn: str) -> list[str]:
    """What a restore does not copy, made as the source has it; returns the steps taken."""
    steps = []
    dynamodb.update_continuous_backups(
        TableName=plan.target, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    steps.append("point-in-time recovery enabled")
    dynamodb.tag_resource(ResourceArn=target_arn, Tags=plan.target_tags())
    steps.append(f"{len(plan.target_tags())} tag(s) set")
    if plan.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=plan.target,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": plan.ttl_attribute},
        )
        steps.append(f"TTL on {plan.ttl_attribute}")
    if plan.deletion_protection:
        dynamodb.update_table(TableName=plan.target, DeletionProtectionEnabled=True)
        steps.append("deletion protection on")
    return steps


def check_settings(dynamodb: Any, plan: RestorePlan) -> list[dict[str, Any]]:
    """The restored table's settings read back beside what the source has."""
    table = _describe(dynamodb, plan.target) or {}
    sse = table.get("SSEDescription") or {}
    pitr = dynamodb.describe_continuous_backups(TableName=plan.target)["ContinuousBackupsDescription"]
    ttl = dynamodb.describe_time_to_live(TableName=plan.target).get("TimeToLiveDescription") or {}
    tags = {t["Key"]: t["Value"] for t in _tags(dynamodb, table["TableArn"])} if table else {}
    wanted_tags = {t["Key"]: t["Value"] for t in plan.target_tags()}
    rows = [
        ("kms_key", plan.kms_key_arn, sse.get("KMSMasterKeyArn") if sse.get("SSEType") == "KMS" else None),
        ("billing_mode", plan.billing_mode, (table.get("BillingModeSummary") or {}).get("BillingMode")),
        (
            "indexes",
            sorted(g["IndexName"] for g in plan.gsis),
            sorted(g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])),
        ),
        ("key_schema", plan.key_schema, table.get("KeySchema")),
        (
            "point_in_time_recovery",
            "ENABLED",
            (pitr.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus"),
        ),
        ("ttl_attribute", plan.ttl_attribute, ttl.get("AttributeName") if plan.ttl_attribute else None),
        ("tags", wanted_tags, {k: v for k, v in tags.items() if k in wanted_tags}),
        ("deletion_protection", plan.deletion_protection, bool(table.get("DeletionProtectionEnabled"))),
    ]
    return [{"setting": name, "source": want, "restored": got, "ok": want == got} for name, want, got in rows]


# -- verify -------------------------------------------------------------------------------------


def canonical(item: Mapping[str, Any]) -> str:
    """One text per item, whatever order a service returns attributes and set members in."""

    def norm(value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {k: norm(v) for k, v in value.items()}
            for kind in ("SS", "NS", "BS"):
                if kind in out:
                    out[kind] = sorted(out[kind])
            return out
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, bytes):
            return value.hex()
        return value

    return json.dumps(norm(item), sort_keys=True, separators=(",", ":"))


@dataclass
class Verification:
    window: dict[str, str]
    groups: dict[str, dict[str, int]] = field(default_factory=dict)  # day shard/day -> counts
    compared: int = 0  # items that cannot have changed since T, hashed on both sides
    changed_since: int = 0  # in both, but the source changed them after T - settle: not compared
    deleted_since: list[str] = field(default_factory=list)  # in the copy only
    missing: list[str] = field(default_factory=list)  # in the source (created <= T), not in the copy
    mismatched: list[str] = field(default_factory=list)  # unchanged in the source, different in the copy
    source_hash: str = ""
    restored_hash: str = ""
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched and self.source_hash == self.restored_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "window": self.window,
            "counts": self.groups,
            "compared": self.compared,
            "changed_since": self.changed_since,
            "deleted_since": len(self.deleted_since),
            "missing": len(self.missing),
            "mismatched": len(self.mismatched),
            "source_hash": self.source_hash,
            "restored_hash": self.restored_hash,
            "examples": {
                "missing": self.missing[:MAX_LISTED],
                "mismatched": self.mismatched[:MAX_LISTED],
                "deleted_since": self.deleted_since[:MAX_LISTED],
            },
            "requests": dict(self.requests),
        }


def _paged(call: Callable[..., Any], request: dict[str, Any]) -> Iterable[Any]:
    for _ in range(MAX_PAGES):
        page = call(**request)
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def _window_items(
    dynamodb: Any,
    table: str,
    kind: TableKind,
    start: dt.datetime,
    end: dt.datetime,
    *,
    index: str,
    shards: int,
) -> dict[str, list[dict[str, Any]]]:
    """``{group: items}``: items created in [start, end], grouped per day shard (by-day) or per day."""
    names = {"#t": kind.time_attribute}
    groups: dict[str, list[dict[str, Any]]] = {}
    if kind.by_day:
        day = start.date()
        while day <= end.date():
            for key in day_shard_keys(day, shards):
                request = {
                    "TableName": table,
                    "IndexName": index,
                    "KeyConditionExpression": "day_shard = :d AND #t BETWEEN :from AND :to",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        ":d": {"S": key},
                        ":from": {"N": str(ms_from_datetime(start))},
                        ":to": {"N": str(ms_from_datetime(end))},
                    },
                }
                items = list(_paged(dynamodb.query, request))
                if items:
                    groups[key] = items
            day += dt.timedelta(days=1)
        return groups
    # A filter compares these S values as text: exact, since they are written in payments.clock's
    # one fixed-width UTC format, in which text order is time order.
    scan = {
        "TableName": table,
        "FilterExpression": "#t BETWEEN :from AND :to",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            ":from": {"S": iso_from_ms(ms_from_datetime(start))},
            ":to": {"S": iso_from_ms(ms_from_datetime(end))},
        },
    }
    for item in _paged(dynamodb.scan, scan):
        groups.setdefault(str(scalar(item, kind.time_attribute))[:10], []).append(item)
    return groups


def verify_restore(
    dynamodb: Any,
    plan: RestorePlan,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    settle_s: float = DEFAULT_SETTLE_S,
    index: str = "by-day",
    shards: int | None = None,
) -> Verification:
    """Compare the copy with the source over ``window_days`` UTC days ending at T (module docstring)."""
    kind = plan.kind
    end = plan.to_time
    start = dt.datetime.combine(end.date() - dt.timedelta(days=window_days - 1), dt.time(), dt.UTC)
    result = Verification(window={"from": iso(start), "to": iso(end), "settle_s": str(settle_s)})
    shard_count = shards or MAX_DAY_SHARDS
    with RequestCounter(result.requests).watching(dynamodb):
        read = {
            side: _window_items(dynamodb, table, kind, start, end, index=index, shards=shard_count)
            for side, table in (("source", plan.source), ("restored", plan.target))
        }
    key_names = key_names_of({"KeySchema": plan.key_schema})

    def keyed(groups: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        return {key_id(key_names, item): item for items in groups.values() for item in items}

    for side, groups in read.items():
        for group, items in groups.items():
            result.groups.setdefault(group, {"source": 0, "restored": 0})[side] = len(items)
    result.groups = dict(sorted(result.groups.items()))
    source, restored = keyed(read["source"]), keyed(read["restored"])
    cutoff = end - dt.timedelta(seconds=settle_s)
    cutoff_ms = ms_from_datetime(cutoff)
    source_digest, restored_digest = hashlib.sha256(), hashlib.sha256()
    for key in sorted(source):
        if key not in restored:
            result.missing.append(key)
            continue
        changed = scalar(source[key], kind.changed_attribute)
        # The changed attribute is ISO-8601 UTC text on every table, compared as the instant it names.
        if changed is None or ms_from_iso(changed) > cutoff_ms:
            result.changed_since += 1
            continue
        mine, theirs = canonical(source[key]), canonical(restored[key])
        source_digest.update(mine.encode() + b"\n")
        restored_digest.update(theirs.encode() + b"\n")
        result.compared += 1
        if mine != theirs:
            result.mismatched.append(key)
    result.deleted_since = sorted(set(restored) - set(source))
    result.source_hash, result.restored_hash = source_digest.hexdigest(), restored_digest.hexdigest()
    return result


# -- cut over -----------------------------------------------------------------------------------


def cutover(plan: RestorePlan) -> dict[str, str]:
    """The Terraform override that points the platform at the copy, and the way back."""
    var = plan.kind.tf_variable
    return {
        "variable": var,
        "apply": f"terraform apply -var '{var}={plan.target}'",
        "cut_back": (
            f"terraform apply without -var '{var}=…' (remove it from your tfvars): functions, IAM, "
            f"alarms and outputs return to {plan.source}; writes made to {plan.target} meanwhile "
            "stay there (docs/runbooks.md, restore step 'Cut back')"
        ),
    }


# -- status -------------------------------------------------------------------------------------


def restored_tables(dynamodb: Any, prefix: str, suffix: str | None = None) -> list[dict[str, Any]]:
    """Tables named ``<prefix>…`` (of the environment ``suffix``, when given) that are restores:
    source, restore time and whether the restore is still running. For ``ops status``: a restore in
    progress is worth a line; a finished one that nothing points at is worth a cleanup."""
    names: list[str] = []
    request: dict[str, Any] = {}
    for _ in range(MAX_PAGES):
        page = dynamodb.list_tables(**request)
        names.extend(
            n for n in page.get("TableNames", []) if n.startswith(prefix) and (not suffix or suffix in n)
        )
        if not page.get("LastEvaluatedTableName"):
            break
        request["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]
    found: list[dict[str, Any]] = []
    for name in names:
        table = _describe(dynamodb, name)
        summary = (table or {}).get("RestoreSummary")
        if not table or not summary:
            continue
        when = summary.get("RestoreDateTime")
        found.append(
            {
                "table": name,
                "source": str(summary.get("SourceTableArn") or summary.get("SourceBackupArn") or "").rsplit(
                    "/", 1
                )[-1],
                "restore_time": iso(when) if isinstance(when, dt.datetime) else when,
                "status": table.get("TableStatus"),
                "in_progress": bool(summary.get("RestoreInProgress"))
                or table.get("TableStatus") == "CREATING",
            }
        )
    return found
