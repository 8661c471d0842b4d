"""Configuration: every environment variable the application reads, in one place.

Names and meanings are the contract in docs/interfaces.md ("Environment variables"). The
functions' settings (``Settings``) are read once per container; the scheduled jobs take theirs
from the same ``load_settings``. Below them, the few variables read on every use: the processor
test hooks and the SDK retry overrides the operator CLI honours.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from payments import names

DEFAULT_RETENTION_DAYS = 90  # the default of the cleanup_retention_days variable


@dataclass(frozen=True)
class Settings:
    environment_suffix: str
    region: str
    transactions_table: str
    audit_table: str
    idempotency_table: str
    by_day_index: str
    by_customer_index: str
    by_merchant_index: str
    day_shards: int
    audit_queue_url: str
    failed_queue_url: str
    dlq_url: str
    alerts_topic_arn: str
    events_topic_arn: str
    failed_topic_arn: str
    archive_bucket: str
    state_machine_arn: str
    processor_endpoint_param: str
    processor_credentials_param: str
    fraud_rules_param: str
    audit_ttl_days: int
    idempotency_ttl_hours: int
    alarm_name_prefix: str
    cors_allowed_origins: tuple[str, ...]
    # Settlement protocol (docs/interfaces.md "Settlement protocol").
    settlement_lease_seconds: int = 90
    stuck_after_seconds: int = 900
    # Attempts a payment gets (the workflow's and the retry consumer's) before it is final FAILED
    # (nothing was ever sent to the processor) or parked for a human (a charge may have been made):
    # Terraform's max_settlement_attempts (50, at least 16; see its description for the arithmetic).
    max_settlement_attempts: int = 50
    sweep_lookback_days: int = 2
    cleanup_retention_days: int = DEFAULT_RETENTION_DAYS
    # API clients and their hashed secrets (docs/interfaces.md "Authorization").
    clients_table: str = ""
    # Refuse API requests that arrive without the authorizer's principal (REQUIRE_PRINCIPAL).
    require_principal: bool = True


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer") from exc
    if value < minimum:
        raise ValueError(f"environment variable {name} must be >= {minimum}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: the process environment)."""
    e = os.environ if env is None else env
    suffix = e.get("ENVIRONMENT_SUFFIX", "dev")
    origins = tuple(o.strip() for o in e.get("CORS_ALLOWED_ORIGINS", "*").split(",") if o.strip())
    return Settings(
        environment_suffix=suffix,
        region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or "us-east-1",
        transactions_table=e.get("TRANSACTIONS_TABLE", names.transactions_table(suffix)),
        audit_table=e.get("AUDIT_TABLE", names.audit_table(suffix)),
        idempotency_table=e.get("IDEMPOTENCY_TABLE", names.idempotency_table(suffix)),
        by_day_index=e.get("BY_DAY_INDEX", "by-day"),
        by_customer_index=e.get("BY_CUSTOMER_INDEX", "by-customer"),
        by_merchant_index=e.get("BY_MERCHANT_INDEX", "by-merchant"),
        day_shards=_int(e, "DAY_SHARDS", 16, 1),
        audit_queue_url=e.get("AUDIT_QUEUE_URL", ""),
        failed_queue_url=e.get("FAILED_QUEUE_URL", ""),
        dlq_url=e.get("DLQ_URL", ""),
        alerts_topic_arn=e.get("ALERTS_TOPIC_ARN", ""),
        events_topic_arn=e.get("EVENTS_TOPIC_ARN", ""),
        failed_topic_arn=e.get("FAILED_TOPIC_ARN", ""),
        archive_bucket=e.get("ARCHIVE_BUCKET", ""),
        state_machine_arn=e.get("STATE_MACHINE_ARN", ""),
        processor_endpoint_param=e.get(
            "PROCESSOR_ENDPOINT_PARAM", names.parameter(suffix, "processor/endpoint")
        ),
        processor_credentials_param=e.get(
            "PROCESSOR_CREDENTIALS_PARAM", names.parameter(suffix, "processor/credentials")
        ),
        fraud_rules_param=e.get("FRAUD_RULES_PARAM", names.parameter(suffix, "fraud/rules")),
        audit_ttl_days=_int(e, "AUDIT_TTL_DAYS", 90, 1),
        # The spec keeps idempotency records at least 24 h: a smaller value is raised to it.
        idempotency_ttl_hours=max(24, _int(e, "IDEMPOTENCY_TTL_HOURS", 24, 1)),
        alarm_name_prefix=e.get("ALARM_NAME_PREFIX", names.ALARM_PREFIX),
        cors_allowed_origins=origins or ("*",),
        # Longer than any function that settles can run (retry consumer: 60 s): an expired
        # lease means its holder is gone.
        settlement_lease_seconds=_int(e, "SETTLEMENT_LEASE_SECONDS", 90, 1),
        # Longer than the workflow's whole budget: younger unfinished transactions may still
        # be progressing.
        stuck_after_seconds=_int(e, "STUCK_AFTER_SECONDS", 900, 60),
        max_settlement_attempts=_int(e, "MAX_SETTLEMENT_ATTEMPTS", 50, 2),
        sweep_lookback_days=_int(e, "SWEEP_LOOKBACK_DAYS", 2, 1),
        cleanup_retention_days=_int(e, "CLEANUP_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1),
        clients_table=e.get("CLIENTS_TABLE", names.clients_table(suffix)),
        require_principal=e.get("REQUIRE_PRINCIPAL", "true").strip().lower() != "false",
    )


def require(*names: str, env: Mapping[str, str] | None = None) -> None:
    """Raise unless every variable named is set: for code that must not fall back to a default
    (a job that deletes from the transactions table must never guess the table's name)."""
    e = os.environ if env is None else env
    missing = [name for name in names if not e.get(name, "").strip()]
    if missing:
        raise ValueError(f"environment variable(s) {', '.join(missing)} not set")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this container, read once (Lambda environments do not change while warm)."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()


# ---------------------------------------------------------------------------- read on every use

# Test and local-emulator hooks of the processor client; unset in AWS.
PROCESSOR_CA_BUNDLE = "PROCESSOR_CA_BUNDLE"
PROCESSOR_TIMEOUT_SECONDS = "PROCESSOR_TIMEOUT_SECONDS"


def processor_ca_bundle(env: Mapping[str, str] | None = None) -> str | None:
    """A PEM file of extra CAs to trust for the processor's HTTPS endpoint, if one is named."""
    e = os.environ if env is None else env
    return e.get(PROCESSOR_CA_BUNDLE, "").strip() or None


def processor_timeout_seconds(default: float, env: Mapping[str, str] | None = None) -> float:
    """The processor request time-out: ``default`` unless overridden (never below 50 ms)."""
    e = os.environ if env is None else env
    raw = e.get(PROCESSOR_TIMEOUT_SECONDS, "").strip()
    try:
        return max(0.05, float(raw)) if raw else default
    except ValueError:
        return default


def sdk_retry_overrides(default_attempts: int, env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """``(mode, max_attempts)`` with ``AWS_RETRY_MODE=legacy`` / ``AWS_MAX_ATTEMPTS`` winning over the
    defaults, as with any AWS tool (the operator CLI; the functions keep their fixed budgets)."""
    e = os.environ if env is None else env
    mode = "legacy" if e.get("AWS_RETRY_MODE") == "legacy" else "standard"
    return mode, int(e.get("AWS_MAX_ATTEMPTS") or default_attempts)
