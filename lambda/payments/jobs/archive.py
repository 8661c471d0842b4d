"""Cleanup archive objects in S3: conditional writes, manifests, and verification.

An archive object is JSONL, one line per row in DynamoDB's own export format
(``{"Item": {...}}``, DYNAMODB_JSON): restorable with PutItem or an import, types exact.

* created with ``If-None-Match: *`` (never overwrites another run's object);
* changed only with ``If-Match: <etag>``; on 412 (or S3's 409 for a concurrent conditional
  write) the object is read again and the same line-level changes are applied to what is there,
  so two writers merge instead of the later one erasing the earlier one's rows;
* fenced: a run holding the cleanup lock records its owner and fencing token in every object
  (S3 metadata ``fence-owner``/``fence-token``) and manifest it writes; a conditional write that
  finds the object or manifest written since by a run with a later token (``stale_fence``) stops
  with ``LockLost`` instead of merging or replacing — a run that lost the lock shrinks no object
  and replaces no manifest;
* each finished object gets a manifest ``<name>.manifest.json``: its row keys with their
  ``version``, the count and the SHA-256 of the object body. ``verify`` proves, from the current
  object versions, that every row a manifest records as deleted is archived exactly once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from payments.clock import ms_from_datetime
from payments.dynamo import value_of
from payments.jobs import JobError
from payments.jobs.lock import LockLost
from payments.layout import (
    ARCHIVE_PREFIX,
    MANIFEST_SUFFIX,
    OBJECT_SUFFIX,
    SUMMARY_NAME,
    cleanup_prefix,
    manifest_key,
)
from payments.store.keys import key_id, key_names_of

MAX_MERGE_ATTEMPTS = 8
MAX_LIST_PAGES = 1_000_000  # bound on a loop driven by a remote service


def item_line(item: Mapping[str, Any]) -> str:
    return json.dumps({"Item": item}, sort_keys=True, separators=(",", ":"))


def body_of(lines: Mapping[str, str]) -> bytes:
    return ("\n".join(lines[k] for k in sorted(lines)) + "\n").encode("utf-8") if lines else b""


def item_version(item: Mapping[str, Any]) -> str | None:
    """A raw row's ``version`` as text; None without one."""
    version = value_of(item, "version", "N")
    return None if version is None else str(version)


def _precondition_failed(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return status in (409, 412) or error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict")


def _archived_cold(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "InvalidObjectState"


RESTORE_HINT = (
    "restore it first, e.g. aws s3api restore-object --bucket {bucket} --key {key} "
    "--restore-request Days=7,GlacierJobParameters={{Tier=Standard}} (see docs/runbooks.md "
    "'Verify an archive'), then run --verify again"
)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


Fence = tuple[str, int]  # (lock owner, fencing token) of the run that wrote an object


def fence_of(metadata: Mapping[str, str] | None) -> Fence | None:
    if not metadata or "fence-token" not in metadata:
        return None
    try:
        return str(metadata.get("fence-owner", "")), int(metadata["fence-token"])
    except ValueError:
        return None


def _stale(mine: Fence | None, found: Fence | None) -> bool:
    """Whether ``found`` (the writer of what is there now) has fenced ``mine`` out: another
    owner with a token at least ours (tokens grow with every take-over)."""
    return mine is not None and found is not None and found[0] != mine[0] and found[1] >= mine[1]


@dataclass
class ArchiveObject:
    key: str
    lines: dict[str, str]  # row key id -> line
    etag: str | None
    done: set[str] = field(default_factory=set)  # rows deleted (or TTL-marked) by now
    fence: Fence | None = None  # who wrote the version read


class ArchiveStore:
    """Reads and conditionally writes archive objects; ``key_id`` names a row by its key."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key_id: Callable[[Mapping[str, Any]], str],
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key_id = key_id
        self.merges = 0
        self.fence: Fence | None = None  # set by a run holding the lock: stamped on every write

    def _metadata(self) -> dict[str, str]:
        if self.fence is None:
            return {}
        return {"fence-owner": self.fence[0], "fence-token": str(self.fence[1])}

    def _refuse_if_fenced(self, key: str, found: Fence | None) -> None:
        if _stale(self.fence, found):
            raise LockLost(
                f"{key} was written by a later holder of the cleanup lock ({found}); "
                "this run lost the lock and stopped"
            )

    def parse(self, body: bytes) -> dict[str, str]:
        lines: dict[str, str] = {}
        for line in body.decode("utf-8").splitlines():
            if line.strip():
                lines[self.key_id(json.loads(line)["Item"])] = line
        return lines

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists. A listing, not a GET: without s3:ListBucket S3 answers a GET of
        a missing object with 403, which must not pass for "missing"."""
        page = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(obj["Key"] == key for obj in page.get("Contents", []))

    def read(self, key: str) -> ArchiveObject | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return ArchiveObject(
            key,
            self.parse(response["Body"].read()),
            response.get("ETag"),
            fence=fence_of(response.get("Metadata")),
        )

    def create_object(self, key: str, items: Sequence[Mapping[str, Any]]) -> ArchiveObject:
        lines = {self.key_id(item): item_line(item) for item in items}
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body_of(lines),
                ContentType="application/x-ndjson",
                Metadata=self._metadata(),
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _precondition_failed(exc):
                raise JobError(f"archive object {key} already exists: refusing to overwrite it") from exc
            raise
        return ArchiveObject(key, lines, response.get("ETag"), fence=self.fence)

    def patch(self, obj: ArchiveObject, changes: Mapping[str, str | None], *, stamp: bool = False) -> None:
        """Set (line) or remove (None) rows of ``obj``; merges with a concurrent writer on 412,
        unless a later lock holder wrote it (``LockLost``). ``stamp`` writes even without changes,
        to record this run's fence on an object taken over from another run."""
        if not changes and not stamp:
            return
        self._refuse_if_fenced(obj.key, obj.fence)
        for _attempt in range(MAX_MERGE_ATTEMPTS):
            lines = dict(obj.lines)
            for ident, line in changes.items():
                if line is None:
                    lines.pop(ident, None)
                else:
                    lines[ident] = line
            request: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": obj.key,
                "Body": body_of(lines),
                "ContentType": "application/x-ndjson",
                "Metadata": self._metadata(),
            }
            if obj.etag:
                request["IfMatch"] = obj.etag
            else:
                request["IfNoneMatch"] = "*"
            try:
                response = self.s3.put_object(**request)
            except ClientError as exc:
                if not _precondition_failed(exc) and not (obj.etag and _missing(exc)):
                    raise
                # Someone else changed (or removed) the object since we read it: start from
                # what is there now and apply the same row changes again.
                self.merges += 1
                current = self.read(obj.key)
                self._refuse_if_fenced(obj.key, current.fence if current else None)
                obj.lines = current.lines if current else {}
                obj.etag = current.etag if current else None
                obj.fence = current.fence if current else None
                continue
            obj.lines = lines
            obj.etag = response.get("ETag")
            obj.fence = self.fence
            return
        raise JobError(f"archive object {obj.key} kept changing under us ({MAX_MERGE_ATTEMPTS} merges)")

    def write_manifest(self, obj: ArchiveObject, extra: Mapping[str, Any]) -> dict[str, Any]:
        body = body_of(obj.lines)
        keys = []
        for ident in sorted(obj.lines):
            item = json.loads(obj.lines[ident])["Item"]
            keys.append({"key": ident, "version": item_version(item)})
        manifest = {
            **({"fence": {"owner": self.fence[0], "token": self.fence[1]}} if self.fence else {}),
            "object": obj.key,
            "count": len(keys),
            "sha256": hashlib.sha256(body).hexdigest(),
            "keys": keys,
            **extra,
        }
        self.put_json(manifest_key(obj.key), manifest)
        return manifest

    def put_json(self, key: str, data: Any) -> None:
        """Create ``key``, or replace it if an earlier run with an older (or the same) fence left
        one — a crashed attempt; one written by a later lock holder is never replaced."""
        body = (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")
        put = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": "application/json",
            "Metadata": self._metadata(),
        }
        try:
            self.s3.put_object(**put, IfNoneMatch="*")
            return
        except ClientError as exc:
            if not _precondition_failed(exc):
                raise
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        self._refuse_if_fenced(key, fence_of(head.get("Metadata")))
        # If-Match the version judged: one written since (by a later holder) refuses this write.
        self.s3.put_object(**put, IfMatch=head["ETag"])

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        for _ in range(MAX_LIST_PAGES):
            page = self.s3.list_objects_v2(**request)
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return keys
            request["ContinuationToken"] = page["NextContinuationToken"]
        raise JobError(f"listing s3://{self.bucket}/{prefix} did not finish")


@dataclass
class VerifyResult:
    prefix: str
    objects: int = 0
    manifests: int = 0
    runs: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # objects of an interrupted chunk (no manifest)
    pending_rows: int = 0
    unreadable: list[str] = field(default_factory=list)  # archived to Glacier: needs a restore first
    table_rows_checked: int = 0  # archived rows of the window looked up in the table
    no_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "ok": self.ok,
            "objects": self.objects,
            "manifests": self.manifests,
            "runs": self.runs,
            "deleted_rows_verified": self.rows,
            "pending_objects": self.pending,
            "pending_rows": self.pending_rows,
            "unreadable_objects": self.unreadable,
            "table_rows_checked": self.table_rows_checked,
            "no_run": self.no_run,
            "problems": self.problems,
        }


class _Cold(Exception):
    """An object in a Glacier storage class: not readable without a restore."""


def _read_json(store: ArchiveStore, key: str, result: VerifyResult) -> Any:
    try:
        body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _archived_cold(exc):
            _note_cold(store, key, result)
            raise _Cold(key) from exc
        raise
    return json.loads(body)


def _read_object(store: ArchiveStore, key: str, result: VerifyResult) -> ArchiveObject | None:
    try:
        return store.read(key)
    except ClientError as exc:
        if _archived_cold(exc):
            _note_cold(store, key, result)
            raise _Cold(key) from exc
        raise


def _note_cold(store: ArchiveStore, key: str, result: VerifyResult) -> None:
    if key not in result.unreadable:
        result.unreadable.append(key)
        result.problems.append(
            f"{key}: not readable without a restore (Glacier storage class); "
            + RESTORE_HINT.format(bucket=store.bucket, key=key)
        )


def verify(store: ArchiveStore, prefix: str) -> VerifyResult:
    """Every row a manifest records is in the current version of its object, with the recorded
    version and the recorded checksum, and in no other object; every run summary's objects have
    manifests. Objects without a manifest are listed as pending (the next cleanup reconciles)."""
    result = VerifyResult(prefix=prefix)
    keys = store.list_keys(prefix)
    objects = {k for k in keys if k.endswith(OBJECT_SUFFIX)}
    manifests = {k for k in keys if k.endswith(MANIFEST_SUFFIX)}
    summaries = [k for k in keys if k.endswith("/" + SUMMARY_NAME)]
    result.objects, result.manifests, result.runs = len(objects), len(manifests), len(summaries)
    owners: Counter[str] = Counter()
    for key in sorted(manifests):
        with contextlib.suppress(_Cold):
            _verify_manifest(store, key, owners, result)
    manifest_objects = {k.removesuffix(MANIFEST_SUFFIX) + OBJECT_SUFFIX for k in manifests}
    result.pending = sorted(objects - manifest_objects)
    for key in result.pending:
        with contextlib.suppress(_Cold):
            pending = _read_object(store, key, result)
            for ident in pending.lines if pending else {}:
                owners[ident] += 1
                result.pending_rows += 1
    for ident, n in sorted(owners.items()):
        if n > 1:
            result.problems.append(f"row {ident} is archived in {n} objects")
    for key in summaries:
        try:
            summary = _read_json(store, key, result)
        except _Cold:
            continue
        for listed in summary.get("objects", []):
            # A run may finish (reconcile) a chunk another cutoff's run left: its manifest is
            # beside the object, in that run's folder.
            if listed not in manifest_objects and not (
                not listed.startswith(prefix) and store.exists(manifest_key(listed))
            ):
                result.problems.append(f"{key}: lists {listed}, which has no manifest")
    return result


def _verify_manifest(store: ArchiveStore, key: str, owners: Counter[str], result: VerifyResult) -> None:
    manifest = _read_json(store, key, result)
    obj = _read_object(store, str(manifest["object"]), result)
    if obj is None:
        result.problems.append(f"{manifest['object']}: listed by {key} but missing")
        return
    body = body_of(obj.lines)
    if hashlib.sha256(body).hexdigest() != manifest["sha256"]:
        result.problems.append(f"{obj.key}: SHA-256 differs from its manifest (object changed)")
    if len(obj.lines) != manifest["count"]:
        result.problems.append(f"{obj.key}: {len(obj.lines)} rows, manifest says {manifest['count']}")
    for entry in manifest["keys"]:
        line = obj.lines.get(entry["key"])
        if line is None:
            result.problems.append(f"{obj.key}: deleted row {entry['key']} is not in the object")
            continue
        if item_version(json.loads(line)["Item"]) != entry["version"]:
            result.problems.append(f"{obj.key}: row {entry['key']} has another version than recorded")
        owners[entry["key"]] += 1
        result.rows += 1


def verify_archive(
    dynamodb_client: Any, table: str, s3_client: Any, bucket: str, day: dt.date
) -> VerifyResult:
    """``ops cleanup --verify``: the archive checked against the table, not against itself.

    ``verify`` checks the runs of cutoff date ``day`` (manifests, checksums, summaries). Then,
    across *every* cutoff folder and every version of every archive object S3 still keeps
    (noncurrent versions of the versioned bucket included, so deleted or trimmed objects are
    seen), each row of the window (older than ``day``'s cutoff) that was ever archived is looked
    up in the table: a row missing from the table must be in exactly one current archive object,
    at the highest version any archive ever held of it. A date with no run is a problem.
    """
    names = key_names_of(dynamodb_client.describe_table(TableName=table)["Table"])
    store = ArchiveStore(s3_client, bucket, lambda item: key_id(names, item))
    prefix = cleanup_prefix(day)
    result = verify(store, prefix)
    if not store.list_keys(prefix):
        result.no_run = True
        result.problems.append(
            f"no cleanup run archived anything for cutoff date {day.isoformat()} "
            f"(nothing under s3://{bucket}/{prefix}); check the date (it is the cutoff, not the run day)"
        )
    cutoff_ms = ms_from_datetime(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
    _compare_with_table(dynamodb_client, table, names, store, cutoff_ms, result)
    return result


BATCH_GET_LIMIT = 100


def _object_versions(store: ArchiveStore) -> list[tuple[str, str | None, bool, str]]:
    """(key, version id, is current, storage class) of every archive object version; the
    current objects only when the bucket keeps no versions (or listing them is not allowed)."""
    out: list[tuple[str, str | None, bool, str]] = []
    request: dict[str, Any] = {"Bucket": store.bucket, "Prefix": f"{ARCHIVE_PREFIX}/"}
    try:
        for _ in range(MAX_LIST_PAGES):
            page = store.s3.list_object_versions(**request)
            for v in page.get("Versions", []):
                if v["Key"].endswith(OBJECT_SUFFIX):
                    version = v.get("VersionId")
                    out.append(
                        (
                            v["Key"],
                            None if version in (None, "null") else version,
                            bool(v.get("IsLatest")),
                            str(v.get("StorageClass") or "STANDARD"),
                        )
                    )
            if not page.get("IsTruncated"):
                return out
            request["KeyMarker"] = page.get("NextKeyMarker")
            request["VersionIdMarker"] = page.get("NextVersionIdMarker")
    except ClientError:
        out = []
    for key in store.list_keys(f"{ARCHIVE_PREFIX}/"):
        if key.endswith(OBJECT_SUFFIX):
            out.append((key, None, True, "STANDARD"))
    return out


def _compare_with_table(
    dynamodb: Any, table: str, names: Sequence[str], store: ArchiveStore, cutoff_ms: int, result: VerifyResult
) -> None:
    current: dict[str, list[tuple[str, int]]] = {}  # row -> [(object, version)] in current objects
    highest: dict[str, int] = {}  # row -> highest version any archive version ever held
    keys: dict[str, dict[str, Any]] = {}
    seen_current: set[str] = set()
    for key, version_id, latest, _storage in _object_versions(store):
        if latest and key in seen_current:
            continue
        request: dict[str, Any] = {"Bucket": store.bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            body = store.s3.get_object(**request)["Body"].read()
        except ClientError as exc:
            if _archived_cold(exc):
                _note_cold(store, key, result)
                continue
            if _missing(exc):
                continue
            raise
        if latest:
            seen_current.add(key)
        for ident, line in store.parse(body).items():
            item = json.loads(line)["Item"]
            if int(value_of(item, "timestamp", "N", "0")) >= cutoff_ms:
                continue
            number = int(item_version(item) or 0)
            highest[ident] = max(highest.get(ident, 0), number)
            keys[ident] = {name: item[name] for name in names}
            if latest:
                current.setdefault(ident, []).append((key, number))
    present = _present(dynamodb, table, names, list(keys.values()))
    result.table_rows_checked = len(keys)
    _report_missing(sorted(set(keys) - present), current, highest, result)


def _report_missing(
    missing: list[str],
    current: Mapping[str, list[tuple[str, int]]],
    highest: Mapping[str, int],
    result: VerifyResult,
) -> None:
    """Each archived row missing from the table: in exactly one current object, at its last version."""
    for ident in missing:
        holders = current.get(ident, [])
        if not holders:
            result.problems.append(
                f"row {ident} is missing from the table and in no current archive object "
                "(only in a deleted or overwritten object version)"
            )
        elif len(holders) > 1:
            result.problems.append(
                f"row {ident} is missing from the table and in {len(holders)} current archive objects"
            )
        elif holders[0][1] != highest[ident]:
            result.problems.append(
                f"row {ident} is archived at version {holders[0][1]} in {holders[0][0]}, "
                f"but an archive once held version {highest[ident]}"
            )


def _present(dynamodb: Any, table: str, names: Sequence[str], keys: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}
        }
        for _ in range(MAX_LIST_PAGES):
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found.add(key_id(names, item))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
    return found


def archived_items(s3_client: Any, bucket: str, prefix: str = f"{ARCHIVE_PREFIX}/") -> list[dict[str, Any]]:
    """Every row line of the archive objects under ``prefix`` (current versions), e.g. to restore."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(MAX_LIST_PAGES):
        page = s3_client.list_objects_v2(**request)
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(OBJECT_SUFFIX):
                continue
            body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("utf-8")
            items.extend(json.loads(line)["Item"] for line in body.splitlines() if line.strip())
        if not page.get("IsTruncated"):
            return items
        request["ContinuationToken"] = page["NextContinuationToken"]
    raise JobError("listing archives did not finish")
