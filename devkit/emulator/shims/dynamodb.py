"""DynamoDB: every item operation of the backend runs alone, so a refused transaction undoes only itself.

moto 5.2.5's ``DynamoDBBackend.transact_write_items`` snapshots each table it names
(``copy.deepcopy`` of the whole table) before it applies its items, and when any condition fails it
puts the snapshots back in place of the tables. The server answers requests on many threads, so every
write another request committed to those tables between the snapshot and the refusal is rolled back
with it, although that request was answered 200. On AWS a refused ``TransactWriteItems`` changes
nothing and touches no other write: it is atomic, and serializable with the single-item writes and
reads (the DynamoDB developer guide's "isolation levels" table).

Seen in the e2e flow of a replayed ``Idempotency-Key``: the replay's create transaction (a new
transaction item, the idempotency record, an audit item) is refused on the idempotency record, and
its roll-back restored the transactions table as it was a moment before, undoing the first
payment's ``PENDING → VALIDATING`` transition that the workflow's Validate step had just written.
Settle then found the payment still PENDING and the workflow failed it.

The shim holds one re-entrant lock around each item operation (reads too: moto updates items in
place, and a query or scan beside a write can see half of a transaction). Each operation is
in-memory and short; none of them calls back into the server, so the lock cannot wait on a request
it blocks.
"""

from __future__ import annotations

import threading

from moto.dynamodb.models import DynamoDBBackend

from devkit.emulator.shims._base import serialize

_dynamodb_lock = threading.RLock()

SERIALIZED = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
    "create_backup",
    "restore_table_from_backup",
    "restore_table_to_point_in_time",
)


def shim_dynamodb_atomic_operations() -> None:
    """Serialize the item operations of moto's DynamoDB backend (see the module docstring); idempotent."""
    serialize(DynamoDBBackend, SERIALIZED, _dynamodb_lock)
