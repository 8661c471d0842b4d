"""DynamoDB access for transactions, their audit entries and idempotency records.

Writes that change a transaction's status are TransactWriteItems of two operations: the
conditional update (``status = :expected AND version = :read``, see ``transition``) and the audit
entry (``attribute_not_exists``). Either both land or neither does; a losing writer gets
TransitionConflict and re-reads. Every write goes through ``payments.store.write``: it states its
condition and increments ``version``, so a transition (or the cleanup's delete) conditioned on the
version its caller read refuses a row that any writer changed since. The other writes answer with
``Written``: whether the condition held, and the row as stored now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from payments import audit, ids
from payments.clock import Clock, iso_from_ms
from payments.config import Settings
from payments.dynamo import from_attributes, serialize, to_attributes, value_of
from payments.errors import TransactionNotFound, TransitionConflict
from payments.states import FAILABLE, Status, check_transition
from payments.store import write
from payments.store.keys import key_of, transaction_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

# CancellationReasons codes that mean "throttled / try later" rather than "condition failed".
_THROTTLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})

# Transitions are numbered apart from ``version`` (which every write increments): the number names
# each audit entry and audit-stream message (``<transaction_id>#v<number>``).
TRANSITIONS = "transitions"

__all__ = ["IdempotencyCollision", "Repository", "Throttled", "from_attributes", "to_attributes"]


class IdempotencyCollision(Exception):
    """The idempotency record already exists (or is being written by a concurrent request)."""

    def __init__(self, in_flight: bool) -> None:
        super().__init__("idempotency key already used")
        self.in_flight = in_flight


class Throttled(Exception):
    """DynamoDB cancelled a transaction because of throttling: retry later."""


def _cancellation_codes(exc: ClientError) -> list[str]:
    """The per-operation reason codes of a cancelled TransactWriteItems.

    Any other error is re-raised as it is; a cancellation with a throttling reason raises Throttled.
    """
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise exc
    reasons = exc.response.get("CancellationReasons") or []
    codes = [str(r.get("Code") or "None") for r in reasons]
    if any(code in _THROTTLE_REASONS for code in codes):
        raise Throttled() from exc
    return codes


def transition_number(item: Mapping[str, Any]) -> int:
    """How many transitions ``item`` went through, its creation included (``transitions``; a row
    older than that attribute was only ever versioned by transitions)."""
    return int(item.get(TRANSITIONS) or item.get("version") or 0)


@dataclass
class Repository:
    settings: Settings
    ddb: DynamoDBClient
    clock: Clock = field(default_factory=Clock)

    # ------------------------------------------------------------------ create
    def create(
        self,
        transaction: dict[str, Any],
        idempotency_record: dict[str, Any] | None,
        audit_entry: dict[str, Any],
    ) -> None:
        """Write the PENDING transaction, its idempotency record and audit entry atomically."""
        items: list[TransactWriteItemTypeDef] = [
            write.transact_put(
                self.settings.transactions_table,
                to_attributes(transaction),
                condition="attribute_not_exists(transaction_id)",
            )
        ]
        if idempotency_record is not None:
            items.append(
                write.transact_put(
                    self.settings.idempotency_table,
                    to_attributes(idempotency_record),
                    # TTL deletion lags expiry by up to days: an expired record is free to reuse.
                    condition="attribute_not_exists(idempotency_key) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(self.clock.now_ms() // 1000)}},
                )
            )
        items.append(self._audit_put(audit_entry))
        try:
            write.transact(self.ddb, items)
        except ClientError as exc:
            codes = _cancellation_codes(exc)
            if idempotency_record is not None and len(codes) > 1:
                if codes[1] == "ConditionalCheckFailed":
                    raise IdempotencyCollision(in_flight=False) from exc
                if codes[1] == "TransactionConflict" or codes[0] == "TransactionConflict":
                    raise IdempotencyCollision(in_flight=True) from exc
            raise

    # ------------------------------------------------------------------ reads
    def get(self, transaction_id: str, timestamp: int | None = None) -> dict[str, Any] | None:
        ts = ids.timestamp_of(transaction_id) if timestamp is None else int(timestamp)
        response = self.ddb.get_item(
            TableName=self.settings.transactions_table,
            Key=transaction_key(transaction_id, ts),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_attributes(item) if item else None

    def require(self, transaction_id: str, timestamp: int | None = None) -> dict[str, Any]:
        item = self.get(transaction_id, timestamp)
        if item is None:
            raise TransactionNotFound(transaction_id)
        return item

    def get_idempotency(self, scoped_key: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=self.settings.idempotency_table,
            Key={"idempotency_key": {"S": scoped_key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_attributes(item) if item else None

    def audit_entries(self, transaction_id: str) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.settings.audit_table,
            "KeyConditionExpression": "transaction_id = :t",
            "ExpressionAttributeValues": {":t": {"S": transaction_id}},
            "ConsistentRead": True,
        }
        return audit.ordered(self._query_all(kwargs, max_pages=100))

    def count_recent_for_customer(self, customer_id: str, since_ms: int, exclude_id: str, limit: int) -> int:
        """Transactions of ``customer_id`` since ``since_ms`` (excluding one), counting up to ``limit``."""
        count = 0
        kwargs: dict[str, Any] = {
            "TableName": self.settings.transactions_table,
            "IndexName": self.settings.by_customer_index,
            "KeyConditionExpression": "customer_id = :c AND #ts >= :since",
            "ExpressionAttributeNames": {"#ts": "timestamp", "#id": "transaction_id"},
            "ExpressionAttributeValues": {":c": {"S": customer_id}, ":since": {"N": str(since_ms)}},
            "ProjectionExpression": "#id",
        }
        for page in self._pages(kwargs, max_pages=20):  # bounded: the rule needs "at least limit"
            count += sum(1 for i in page if value_of(i, "transaction_id", "S") != exclude_id)
            if count >= limit:
                break
        return count

    # ------------------------------------------------------------------ writes
    def transition(
        self,
        item: dict[str, Any],
        to_status: str,
        actor: str,
        *,
        set_fields: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        new_attempt: bool = False,
        outbox: frozenset[str] = frozenset(),
        lease_owner: str | None = None,
        lease_free_at: int | None = None,
        expected_attempt: int | None = None,
    ) -> dict[str, Any]:
        """Move ``item`` from its current status to ``to_status``; returns the updated item.

        One TransactWriteItems: the update, conditioned on the status *and the version* the
        caller read (plus, when given, the attempt number, the lease owner, or that the lease
        expired before ``lease_free_at``), and the audit entry. The same write appends the
        audit-stream message to ``stream_outbox`` and adds ``outbox`` effects (retry enqueue,
        notifications): what must follow the transition is recorded with it.
        Raises TransitionConflict when any condition no longer holds.
        """
        from_status = str(item["status"])
        to_status = str(to_status)
        check_transition(from_status, to_status)
        at = self.clock.now_ms()
        updated = dict(item)
        version = int(item.get("version") or 0)
        number = transition_number(item) + 1  # numbers this transition's audit entry and stream message
        attempt = int(item.get("attempts") or 1) + (1 if new_attempt else 0)
        fields: dict[str, Any] = {"status": to_status, "updated_at": iso_from_ms(at), **(set_fields or {})}
        if new_attempt:
            fields["attempts"] = attempt
        fields["previous_status"] = from_status
        fields[TRANSITIONS] = number
        stream = audit.stream_entry(from_status, to_status, iso_from_ms(at), actor, number, attempt)
        names, values, sets = _assignments(fields)
        names.update({"#status": "status", "#so": "stream_outbox"})
        values.update({":expected": {"S": from_status}, ":stream": serialize([stream]), ":empty": {"L": []}})
        sets.append("#so = list_append(if_not_exists(#so, :empty), :stream)")
        conditions = ["#status = :expected"]
        if expected_attempt is not None:
            names["#attempts"] = "attempts"
            values[":attempt"] = {"N": str(expected_attempt)}
            conditions.append("#attempts = :attempt")
        if lease_owner is not None:
            names["#lo"] = "lease_owner"
            values[":owner"] = {"S": lease_owner}
            conditions.append("#lo = :owner")
        if lease_free_at is not None:
            names["#lu"] = "lease_until"
            values[":lease_now"] = {"N": str(lease_free_at)}
            conditions.append("(attribute_not_exists(#lu) OR #lu < :lease_now)")
        clauses = ""
        if outbox:
            names["#ob"] = "outbox"
            values[":ob"] = {"SS": sorted(outbox)}
            clauses = "ADD #ob :ob"
        entry = audit.audit_item(
            item["transaction_id"],
            from_status,
            to_status,
            at,
            actor,
            self.settings.audit_ttl_days,
            detail,
            version=number,
            attempt=attempt,
        )
        try:
            write.transact(
                self.ddb,
                [
                    write.transact_update(
                        self.settings.transactions_table,
                        key_of(item),
                        sets=sets,
                        clauses=_clear_backfilled_ttl(clauses),
                        condition=" AND ".join(conditions),
                        read_version=version,
                        names={**names, **BACKFILL_TTL_NAMES},
                        values=values,
                    ),
                    self._audit_put(entry),
                ],
            )
        except ClientError as exc:
            _cancellation_codes(exc)  # re-raises what is not a cancellation, Throttled for throttling
            raise TransitionConflict(f"{item['transaction_id']}: {from_status} -> {to_status} lost") from exc
        updated.update(fields)
        updated["version"] = version + 1
        updated["stream_outbox"] = [*(item.get("stream_outbox") or []), stream]
        if outbox:
            updated["outbox"] = set(item.get("outbox") or ()) | set(outbox)
        return updated

    def _audit_put(self, entry: dict[str, Any]) -> TransactWriteItemTypeDef:
        """The TransactWriteItems operation that writes an audit entry (never over an existing one)."""
        return write.transact_put(
            self.settings.audit_table, to_attributes(entry), condition="attribute_not_exists(event_id)"
        )

    def _update(self, item: Mapping[str, Any], **parts: Any) -> write.Written:
        """One versioned UpdateItem on ``item``'s row (``payments.store.write.update``): whether its
        condition held, and the row as stored now (decoded; empty when the row is gone)."""
        # A row written before transitions were counted apart from versions: pin its count first.
        parts["sets"] = [*parts.get("sets", ()), "#trn = if_not_exists(#trn, #vcur)"]
        parts["names"] = {
            **parts.get("names", {}),
            "#trn": TRANSITIONS,
            "#vcur": "version",
            **BACKFILL_TTL_NAMES,
        }
        parts["clauses"] = _clear_backfilled_ttl(parts.get("clauses", ""))
        written = write.update(self.ddb, self.settings.transactions_table, key_of(item), **parts)
        return write.Written(written.ok, from_attributes(written.item))

    def take_over_lease(self, item: dict[str, Any], owner: str, until_ms: int, now: int) -> write.Written:
        """Become the settling owner of ``item``'s current attempt once the old lease expired.

        Answers whether it did, with the item as stored now."""
        return self._update(
            item,
            sets=["#lo = :owner", "#lu = :until", "#upd = :updated"],
            condition="#status = :settling AND (attribute_not_exists(#lu) OR #lu < :now)",
            read_version=int(item.get("version") or 0),
            names={"#lo": "lease_owner", "#lu": "lease_until", "#status": "status", "#upd": "updated_at"},
            values={
                ":updated": {"S": iso_from_ms(now)},
                ":owner": {"S": owner},
                ":until": {"N": str(until_ms)},
                ":settling": {"S": Status.SETTLING.value},
                ":now": {"N": str(now)},
            },
        )

    def claim_workflow_start(self, transaction_id: str, timestamp: int, at_ms: int) -> write.Written:
        """Claim the one StartExecution of a PENDING transaction (``workflow_claimed_at``, set once).

        EXPRESS state machines do not de-duplicate StartExecution by name: this claim is what keeps
        intake's replays from starting a second workflow."""
        return self._update(
            {"transaction_id": transaction_id, "timestamp": timestamp},
            sets=["#wc = :at"],
            condition="#status = :pending AND attribute_not_exists(#wc)",
            read_version=write.ANY_VERSION,
            names={"#wc": "workflow_claimed_at", "#status": "status"},
            values={":at": {"S": iso_from_ms(at_ms)}, ":pending": {"S": Status.PENDING.value}},
        )

    def release_workflow_claim(self, transaction_id: str, timestamp: int) -> write.Written:
        """StartExecution was refused (nothing started): let the next replay claim it again."""
        return self._update(
            {"transaction_id": transaction_id, "timestamp": timestamp},
            clauses="REMOVE #wc",
            condition="#status = :pending",
            read_version=write.ANY_VERSION,
            names={"#wc": "workflow_claimed_at", "#status": "status"},
            values={":pending": {"S": Status.PENDING.value}},
        )

    def release_lease(self, item: dict[str, Any], owner: str) -> write.Written:
        """The owner's processor call is over (it failed): let the next actor in without waiting.

        Conditioned on the owner only: whatever else changed, the owner's lease is its to end."""
        return self._update(
            item,
            sets=["#lu = :zero"],
            condition="#lo = :owner",
            read_version=write.ANY_VERSION,
            names={"#lu": "lease_until", "#lo": "lease_owner"},
            values={":zero": {"N": "0"}, ":owner": {"S": owner}},
        )

    def mark_charge_sent(self, item: dict[str, Any], owner: str, at_ms: int) -> write.Written:
        """Record when the first charge request left (kept across attempts); only by the lease owner."""
        return self._update(
            item,
            sets=["#cs = if_not_exists(#cs, :at)"],
            condition="#status = :settling AND #lo = :owner",
            read_version=int(item.get("version") or 0),
            names={"#cs": "charge_sent_at", "#lo": "lease_owner", "#status": "status"},
            values={
                ":at": {"N": str(at_ms)},
                ":owner": {"S": owner},
                ":settling": {"S": Status.SETTLING.value},
            },
        )

    def record_outcome(self, item: dict[str, Any], fields: dict[str, Any]) -> write.Written:
        """Store the processor's answer once; ok too when the *same* answer is already recorded
        (then nothing is rewritten), not when a different one is.

        Deliberately conditioned on neither status, attempt nor version: an answer that arrives
        after the attempt was failed is still the truth about the charge, and the next attempt
        uses it.
        """
        names, values, sets = _assignments(fields)
        written = self._update(
            item,
            sets=sets,
            condition="attribute_not_exists(#po)",
            read_version=write.ANY_VERSION,
            names={**names, "#po": "processor_outcome"},
            values=values,
        )
        if not written and written.item.get("processor_outcome") == fields["processor_outcome"]:
            return write.Written(True, written.item)
        return written

    def clear_outbox(self, item: dict[str, Any], effect: str) -> write.Written:
        """The effect is done (acknowledged): take it off the item's outbox.

        Conditioned only on the row existing: taking a done effect off a set commutes with any
        other write."""
        return self._update(
            item,
            clauses="DELETE #ob :e",
            condition="attribute_exists(#id)",
            read_version=write.ANY_VERSION,
            names={"#ob": "outbox", "#id": "transaction_id"},
            values={":e": {"SS": [effect]}},
        )

    def prune_stream(self, item: dict[str, Any], sent: int, last_version: int) -> write.Written:
        """Drop the first ``sent`` stream_outbox entries, if they are still the ones that were sent."""
        return self._update(
            item,
            clauses="REMOVE " + ", ".join(f"#so[{i}]" for i in range(sent)),
            condition=f"size(#so) >= :n AND #so[{sent - 1}].#sv = :last",
            read_version=write.ANY_VERSION,
            names={"#so": "stream_outbox", "#sv": "version"},
            values={":n": {"N": str(sent)}, ":last": {"N": str(last_version)}},
        )

    def stale_candidates(
        self, day_shard_key: str, created_before_ms: int, updated_before: str
    ) -> list[dict[str, Any]]:
        """Items of one by-day partition, created before the cutoff, last changed before
        ``updated_before``, that are unfinished or still owe a side effect (sweeper).

        ``#u < :u`` compares ``updated_at`` as text, since a DynamoDB filter cannot parse a time. It
        is exact: every ``updated_at`` and ``updated_before`` is written by ``payments.clock``'s one
        formatter (``iso_from_ms``), fixed-width UTC ending in ``Z``, in which text order is time
        order (tests/unit/test_clock.py pins it). The filter only narrows the read: the sweeper
        checks each candidate again on the row read back, comparing epoch milliseconds
        (``payments.recovery``)."""
        # Unfinished and not yet FAILED: the statuses a failure can still be recorded from.
        unfinished = {f":s{i}": {"S": status.value} for i, status in enumerate(sorted(FAILABLE))}
        kwargs: dict[str, Any] = {
            "TableName": self.settings.transactions_table,
            "IndexName": self.settings.by_day_index,
            "KeyConditionExpression": "day_shard = :d AND #ts <= :cut",
            "FilterExpression": (
                f"#u < :u AND (#status IN ({', '.join(unfinished)}) "
                "OR (#status = :failed AND attribute_not_exists(#fin) AND attribute_not_exists(#pk)) "
                "OR attribute_exists(#ob) OR size(#so) > :zero)"
            ),
            "ExpressionAttributeNames": {
                "#ts": "timestamp",
                "#u": "updated_at",
                "#status": "status",
                "#ob": "outbox",
                "#so": "stream_outbox",
                "#fin": "final",
                "#pk": "parked",
            },
            "ExpressionAttributeValues": {
                ":d": {"S": day_shard_key},
                ":failed": {"S": Status.FAILED.value},
                ":cut": {"N": str(created_before_ms)},
                ":u": {"S": updated_before},
                **unfinished,
                ":zero": {"N": "0"},
            },
        }
        return self._query_all(kwargs, max_pages=1000)  # each page is at most 1 MB

    def _query_all(self, kwargs: dict[str, Any], max_pages: int) -> list[dict[str, Any]]:
        """Every item of a Query, page after page (bounded by ``max_pages``), decoded."""
        return [from_attributes(i) for page in self._pages(kwargs, max_pages) for i in page]

    def _pages(self, kwargs: dict[str, Any], max_pages: int) -> Iterator[list[dict[str, Any]]]:
        """The raw items of a Query, one page at a time (at most ``max_pages``)."""
        for _ in range(max_pages):
            response = self.ddb.query(**kwargs)
            yield list(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def set_once(
        self,
        item: dict[str, Any],
        attribute: str,
        value: Any,
        allowed_statuses: frozenset[str],
    ) -> write.Written:
        """Store ``attribute`` unless already present, while the status is one of ``allowed_statuses``.

        Answers whether it did (not when already stored, or the status moved on), with the item as
        stored now.
        """
        status_values = {f":s{i}": {"S": s} for i, s in enumerate(sorted(allowed_statuses))}
        return self._update(
            item,
            sets=["#a = :value", "#u = :u"],
            condition=f"attribute_not_exists(#a) AND #status IN ({', '.join(status_values)})",
            read_version=write.ANY_VERSION,
            names={"#a": attribute, "#u": "updated_at", "#status": "status"},
            values={
                ":value": serialize(value),
                ":u": {"S": iso_from_ms(self.clock.now_ms())},
                **status_values,
            },
        )


BACKFILL_TTL_NAMES = {"#bttl": "expires_at", "#bttlrun": "ttl_backfill"}


def _clear_backfilled_ttl(clauses: str) -> str:
    """``clauses`` plus the removal of a TTL the cleanup's ``--backfill-ttl`` set (and its audit
    note): the TTL was set on the version archived, so a row written since must not expire with
    only its older version archived. A later cleanup archives and deletes (or marks) it again."""
    if "REMOVE " in clauses:
        return clauses.replace("REMOVE ", "REMOVE #bttl, #bttlrun, ", 1)
    return f"{clauses} REMOVE #bttl, #bttlrun".strip()


def _assignments(fields: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """(names, values, ``#fN = :vN`` assignments) that SET ``fields``."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": serialize(value) for i, value in enumerate(fields.values())}
    return names, values, [f"#f{i} = :v{i}" for i in range(len(fields))]
