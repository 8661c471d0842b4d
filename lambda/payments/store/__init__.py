"""The data-access layer of the transactions table (its rows and the cleanup lock item), the audit
table and the idempotency table.

* ``write``: the write rule — the only module that calls a DynamoDB write; every write states its
  condition and increments ``version`` (``tests/unit/test_store.py`` enforces both);
* ``keys``: row keys (a transaction's, the lock's, the ``hash|range`` string);
* ``repository``: the transaction use cases' reads and writes (create, transition, leases, outbox).

The cleanup (``payments.jobs.cleanup``) and its lock (``payments.jobs.lock``) write through
``write`` too.
"""
