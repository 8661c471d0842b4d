"""Reconciliation: finishing the chunks a crashed cleanup run left in the lock's journal.

A chunk is journalled before its archive object is written and leaves the journal once its rows
are done, so a crash leaves it there half done. The next holder of the lock reads the object back
and compares every row with the table: rows already gone stay archived; rows still present are
deleted (or TTL-marked) under their current version — archived again first if they changed — or
leave the object if they are no longer eligible. Each chunk is reconciled in the mode it was
written in; the run's own mode is not touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments.jobs import JobError
from payments.jobs.archive import ArchiveObject, item_line, item_version
from payments.jobs.retention import BACKFILL_TTL, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from payments.jobs.cleanup import Run

BATCH_GET_LIMIT = 100


def reconcile_journal(run: Run, journal: Mapping[str, str]) -> None:
    """Reconcile every chunk of ``journal`` (object key → mode), oldest key first."""
    for key, mode in sorted(journal.items()):
        if run.stopping():
            break
        reconcile_chunk(run, key, mode)


def reconcile_chunk(run: Run, key: str, mode: str) -> None:
    """Finish one journalled chunk (see the module docstring)."""
    store = run.archive_store()
    obj = store.read(key) if store.exists(key) else None
    if obj is None:
        # The run came no further than its journal entry — or is paused before its archive PUT.
        # Take the key with an empty object of ours (If-None-Match): the paused run's PUT is then
        # refused, so it never writes an object no journal or manifest accounts for.
        try:
            obj = store.create_object(key, [])
        except JobError:  # it woke up and wrote it just now: reconcile what it wrote
            obj = store.read(key)
            if obj is None:
                raise
    _reconcile(run, obj, mode)


def _reconcile(run: Run, obj: ArchiveObject, mode: str) -> None:
    archived = {ident: json.loads(line)["Item"] for ident, line in obj.lines.items()}
    current = current_items(run, [run.key_of(item) for item in archived.values()])
    todo: list[dict[str, Any]] = []
    changes: dict[str, str | None] = {}
    for ident, item in archived.items():
        now = current.get(ident)
        if now is None:
            obj.done.add(ident)  # deleted after it was archived here
        elif mode == BACKFILL_TTL and TTL_ATTRIBUTE in now:
            obj.done.add(ident)
        elif run.classify(now, mode) != "eligible":
            changes[ident] = None
        else:
            if item_version(now) != item_version(item):
                changes[ident] = item_line(now)
            todo.append(now)
    run.ensure_lock()
    # Always written (stamped with this run's fence): a paused earlier holder's conditional
    # write of the object is then refused, and it stops instead of shrinking it.
    run.archive_store().patch(obj, changes, stamp=True)
    run.apply(todo, obj, mode)
    run.finish(obj, mode)
    run.count(recovered_objects=1, recovered_rows=len(obj.done))


def current_items(run: Run, keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of ``keys`` as the table holds them now (consistent reads), by key id."""
    found: dict[str, dict[str, Any]] = {}
    table = run.result.table
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}
        }
        for attempt in range(1, run.backoff.max_attempts + 1):
            response = run.dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found[run.key_id(item)] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            run.backoff.wait(attempt)
        else:
            raise JobError("reading rows of an interrupted chunk stayed throttled; rerun the cleanup")
    return found
