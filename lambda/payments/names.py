"""The naming rule of the platform's resources (docs/interfaces.md): every name derived from the
environment suffix is spelled here, for the functions' defaults (``payments.config``) and the
operator CLI (``ops.core.names``) alike."""

from __future__ import annotations


def transactions_table(suffix: str) -> str:
    return f"payment-transactions-{suffix}"


def audit_table(suffix: str) -> str:
    return f"payment-audit-{suffix}"


def idempotency_table(suffix: str) -> str:
    return f"payment-idempotency-{suffix}"


def archive_bucket(suffix: str, account_id: str) -> str:
    return f"payment-archive-{suffix}-{account_id}"


def failed_queue(suffix: str) -> str:
    return f"failed-transactions-{suffix}"


def dlq(suffix: str) -> str:
    return f"failed-transactions-dlq-{suffix}"


def parameter(suffix: str, path: str) -> str:
    """An SSM parameter of the platform (``processor/endpoint``, ``fraud/rules``...)."""
    return f"/payment-{suffix}/{path}"


def scheduler_dlq(suffix: str) -> str:
    return f"payment-scheduler-dlq-{suffix}"


def state_machine(suffix: str) -> str:
    return f"payment-workflow-{suffix}"
