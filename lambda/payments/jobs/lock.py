"""One cleanup at a time: a lease held in one DynamoDB item, shared by ``ops cleanup`` and the job.

The item lives in the transactions table itself (key ``transaction_id = "ops-lock#cleanup"``,
``timestamp = 0``), which the cleanup role already writes, so no extra table or grant is needed.
It carries no index attribute, so no GSI sees it, and the cleanup scan skips its key.

* taken with a conditional write: only when no item exists or its lease has expired, so a
  crashed holder is taken over only after its lease ends;
* renewed by a heartbeat every quarter lease; every destructive step first checks locally that
  the lease is still valid with a safety margin (``ensure``), so a run paused past its lease
  stops instead of racing the run that took over;
* ``expires_at`` (the table's TTL attribute) lets DynamoDB remove an abandoned lock item;
* the item is also the run's journal: ``pending`` maps every archive object whose rows are being
  deleted to the mode, so the next holder reconciles a chunk a crash left half done;
* released in ``finally``: deleted when nothing is pending, else only its lease is ended;
* a journal outlives its run until finished: while chunks are pending the item has no
  ``expires_at`` (TTL never removes it); it gets one again once the journal is empty;
* fenced: ``fence`` is a counter on the item, incremented by every acquisition (take-overs
  included; it restarts at 1 only after a release deleted the item, and the run's unique
  ``owner`` is part of every fenced condition, so a token is never taken for another's).
  Every write to the lock item and every destructive step of the run is conditioned on it:
  the guarded deletes and TTL writes carry a ``ConditionCheck`` of the lock item in their
  TransactWriteItems group (``fence_check``), and archive objects and manifests record it
  (``payments.jobs.archive``), so a run that lost the lock, whatever any host's clock says,
  deletes nothing, shrinks no object and replaces no manifest. The lease's time only decides
  *when* a take-over may happen; the fence decides that the old holder can no longer act.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from payments.clock import iso_from_ms
from payments.dynamo import value_of
from payments.jobs import JobError
from payments.store import write
from payments.store.keys import lock_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 600.0
SAFETY_MARGIN_S = 60.0  # a holder stops this long before its lease ends (clock skew, pauses)
TTL_GRACE_S = 86_400  # the lock item outlives its lease by a day before TTL may remove it
FENCE = "fence"


class LockHeld(JobError):
    """Another run holds the lock (its lease has not expired)."""

    def __init__(self, owner: str, lease_expires_ms: int) -> None:
        self.owner = owner
        self.lease_expires_ms = lease_expires_ms
        until = iso_from_ms(lease_expires_ms)
        super().__init__(
            f"another cleanup is running (lock held by {owner} until {until}); "
            "wait for it, or see docs/runbooks.md 'Cleanup lock' if it is stuck"
        )


class LockLost(JobError):
    """The lease ran out or was taken over: stop before the next destructive step."""


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"


class CleanupLock:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        key_names: list[str],
        *,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        margin_s: float | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat: bool = True,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.key = lock_key(key_names)
        self.hash_name = key_names[0]
        self.owner = owner or new_owner_id()
        self.lease_s = lease_s
        self.margin_s = min(SAFETY_MARGIN_S, lease_s / 4) if margin_s is None else margin_s
        self.clock = clock
        self.heartbeat = heartbeat
        self.lease_until = 0.0
        self.pending: dict[str, str] = {}
        self.token = 0  # the fencing token this run acquired (``fence`` on the lock item)
        self.lost = False
        self._held = False
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lease -----------------------------------------------------------------------------
    def _lease_values(self) -> tuple[float, dict[str, Any]]:
        now = self.clock()
        until = now + self.lease_s
        return until, {
            ":me": {"S": self.owner},
            ":lease": {"N": str(int(until * 1000))},
            ":ttl": {"N": str(self._ttl(until))},
        }

    def _ttl(self, until: float) -> int:
        # A journal (pending chunks) must outlive its run until a later run finishes it: the TTL
        # only applies to a lock item with nothing pending (see ``release``).
        return int(until) + TTL_GRACE_S

    def acquire(self) -> dict[str, str]:
        """Take the lock; returns the journal (pending chunks) a crashed earlier holder left."""
        until, values = self._lease_values()
        values[":now"] = {"N": str(int(self.clock() * 1000))}
        values[":empty"] = {"M": {}}
        taken = write.update(
            self.dynamodb,
            self.table,
            self.key,
            sets=[
                "#owner = :me",
                "lease_expires_at = :lease",
                "expires_at = :ttl",
                "acquired_at = :now",
                "pending = if_not_exists(pending, :empty)",
                "#fence = if_not_exists(#fence, :zero) + :one",
            ],
            condition="attribute_not_exists(#pk) OR lease_expires_at < :now",
            read_version=write.ANY_VERSION,
            names={"#owner": "owner", "#pk": self.hash_name, "#fence": FENCE},
            values={**values, ":zero": {"N": "0"}, ":one": {"N": "1"}},
        )
        if not taken:
            held = taken.item or self._read() or {}
            raise LockHeld(
                str(value_of(held, "owner", "S", "?")), int(value_of(held, "lease_expires_at", "N", "0"))
            )
        self.lease_until = until
        self._held = True
        self.token = int(value_of(taken.item, FENCE, "N", "0"))
        pending = value_of(taken.item, "pending", "M", {})
        self.pending = {key: value_of(pending, key, "S", "delete") for key in pending}
        if self.pending:  # a crashed run's journal: keep it from TTL until this run finishes it
            self._conditional_update(clauses="REMOVE expires_at")
        if self.heartbeat:
            self._thread = threading.Thread(target=self._beat, name="cleanup-lock-heartbeat", daemon=True)
            self._thread.start()
        return dict(self.pending)

    def _read(self) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=self.key, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self.renew()
            except LockLost:
                return
            except Exception:  # a failed renewal is retried; ensure() stops the run in time
                _log.warning("cleanup lock %s: renewal failed; retrying", self.owner, exc_info=True)
                continue

    def renew(self) -> None:
        until, values = self._lease_values()
        if self.pending:  # a journal is kept until finished: no TTL on it
            del values[":ttl"]
            self._conditional_update(
                sets=["lease_expires_at = :lease"], clauses="REMOVE expires_at", values=values
            )
        else:
            self._conditional_update(sets=["lease_expires_at = :lease", "expires_at = :ttl"], values=values)
        self.lease_until = until

    def ensure(self) -> None:
        """Raise ``LockLost`` unless the lease is still valid for at least the safety margin."""
        if self.lost or self.clock() >= self.lease_until - self.margin_s:
            self.lost = True
            raise LockLost(
                "the cleanup lock's lease ran out (the run was paused or could not renew it); "
                "stopped before the next change — the next run reconciles what this one left"
            )

    def _conditional_update(
        self,
        *,
        sets: list[str] | None = None,
        clauses: str = "",
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        """A write to the lock item while this run holds it (``owner`` and ``fence``); ``LockLost``
        otherwise."""
        done = write.update(
            self.dynamodb,
            self.table,
            self.key,
            sets=sets or [],
            clauses=clauses,
            condition=self.held_condition,
            read_version=write.ANY_VERSION,
            names={**self.held_names, **(names or {})},
            values={**self.held_values, **(values or {})},
        )
        if not done:
            self.lost = True
            raise LockLost("the cleanup lock was taken over by another run; stopped")

    # -- fencing ---------------------------------------------------------------------------
    held_condition = "#owner = :me AND #fence = :fence"

    @property
    def held_names(self) -> dict[str, str]:
        return {"#owner": "owner", "#fence": FENCE}

    @property
    def held_values(self) -> dict[str, Any]:
        return {":me": {"S": self.owner}, ":fence": {"N": str(self.token)}}

    def fence_check(self) -> TransactWriteItemTypeDef:
        """The TransactWriteItems ``ConditionCheck`` that this run still holds the lock: put in
        every group of destructive writes, so the group lands only under this run's token."""
        return write.transact_condition_check(
            self.table,
            self.key,
            condition=self.held_condition,
            names=self.held_names,
            values=self.held_values,
        )

    # -- journal ---------------------------------------------------------------------------
    def add_pending(self, object_key: str, mode: str) -> None:
        self.ensure()
        with self._guard:
            self._conditional_update(
                sets=["pending.#obj = :mode"],
                clauses="REMOVE expires_at",
                values={":mode": {"S": mode}},
                names={"#obj": object_key},
            )
            self.pending[object_key] = mode

    def remove_pending(self, object_key: str) -> None:
        with self._guard:
            rest = set(self.pending) - {object_key}
            if rest:
                self._conditional_update(clauses="REMOVE pending.#obj", names={"#obj": object_key})
            else:  # the journal is empty again: the item may expire as a plain lease
                self._conditional_update(
                    sets=["expires_at = :ttl"],
                    clauses="REMOVE pending.#obj",
                    names={"#obj": object_key},
                    values={":ttl": {"N": str(self._ttl(self.lease_until))}},
                )
            self.pending.pop(object_key, None)

    # -- release ---------------------------------------------------------------------------
    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self._held or self.lost:
            return
        self._held = False
        try:
            if self.pending:
                # Keep the journal for the next run; only end the lease.
                self._conditional_update(sets=["lease_expires_at = :zero"], values={":zero": {"N": "0"}})
                return
            # A later run may restart the counter at 1: the owner (unique per run) is part of
            # every fenced condition, so a token is never mistaken for another run's.
            released = write.delete(
                self.dynamodb,
                self.table,
                self.key,
                condition=self.held_condition,
                read_version=write.ANY_VERSION,
                names=self.held_names,
                values=self.held_values,
            )
        except LockLost:
            released = False
        if not released:
            # Someone took over after our lease ended: nothing of ours to release.
            _log.info("cleanup lock %s: taken over before release; nothing to release", self.owner)
