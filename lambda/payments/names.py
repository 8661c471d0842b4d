"""The naming rule of the platform's resources (docs/interfaces.md): every name derived from the
environment suffix is spelled here, for the functions' defaults (``payments.config``) and the
operator CLI (``ops.core.names``, ``ops status``) alike. Terraform spells the same rule in HCL.

A rule derived from the suffix alone is one template (``{suffix}`` is the environment's suffix);
the public functions (``transactions_table(suffix)``, ``dlq(suffix)``...) apply them.
"""

from __future__ import annotations

from collections.abc import Callable

PREFIX = "payment-"
"""What the platform's own names start with: tables, API, alarms, state machine, bucket."""
ALARM_PREFIX = PREFIX
"""The alarms' common prefix (``payment-<what>-<suffix>``): health and ``ops status`` list by it."""


TABLES: dict[str, Callable[[str], str]] = {}
"""The platform's tables by kind (``transactions``, ``audit``...: the ``<kind>_table_name`` outputs)."""


def _rule(template: str, *, table: str | None = None) -> Callable[[str], str]:
    """The name rule ``template`` as a function of the environment suffix (a table's is also
    listed in :data:`TABLES` under its kind)."""

    def named(suffix: str) -> str:
        return template.format(suffix=suffix)

    named.__doc__ = f"``{template}``"
    if table:
        TABLES[table] = named
    return named


environment = _rule("payment-{suffix}")  # the root of its parameters, the subject of its alerts
transactions_table = _rule("payment-transactions-{suffix}", table="transactions")
audit_table = _rule("payment-audit-{suffix}", table="audit")
idempotency_table = _rule("payment-idempotency-{suffix}", table="idempotency")
clients_table = _rule("payment-clients-{suffix}", table="clients")
api_name = _rule("payment-api-{suffix}")
state_machine = _rule("payment-workflow-{suffix}")
scheduler_dlq = _rule("payment-scheduler-dlq-{suffix}")
failed_queue = _rule("failed-transactions-{suffix}")
dlq = _rule("failed-transactions-dlq-{suffix}")


def archive_bucket(suffix: str, account_id: str) -> str:
    return f"payment-archive-{suffix}-{account_id}"


def parameter(suffix: str, path: str) -> str:
    """An SSM parameter of the platform (``processor/endpoint``, ``fraud/rules``...)."""
    return f"/{environment(suffix)}/{path}"
