"""Settings and clients of the scheduled Lambda jobs (report, cleanup).

The jobs run the same ``payments.jobs`` code as the ``ops`` CLI. Their settings come from the
functions' environment (``payments.config``); their clients are tuned for batch work rather than
the API path: a connection per parallel query/segment and more patient retries (no caller is
waiting on a 29 s gateway timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments import config
from payments.sdkconfig import ClientCache, client_config

_CONFIG = client_config(max_attempts=8, max_pool_connections=32, connect_timeout=5, read_timeout=60)


@dataclass(frozen=True)
class JobSettings:
    table: str
    by_day_index: str
    day_shards: int
    archive_bucket: str
    retention_days: int  # the deployed cleanup_retention_days: the shortest retention allowed unforced


def settings() -> JobSettings:
    """Read from the environment on every call (the Lambda sets it; tests change it between cases)."""
    # No fallback for what the jobs read, write and delete: Terraform always sets both.
    config.require("TRANSACTIONS_TABLE", "ARCHIVE_BUCKET")
    loaded = config.load_settings()
    return JobSettings(
        table=loaded.transactions_table,
        by_day_index=loaded.by_day_index,
        day_shards=loaded.day_shards,
        archive_bucket=loaded.archive_bucket,
        retention_days=loaded.cleanup_retention_days,
    )


# One client per service per container, created on first use (region from the environment).
_CLIENTS = ClientCache(_CONFIG)
client = _CLIENTS.get
reset = _CLIENTS.reset


def flag(event: dict[str, Any], name: str, default: bool) -> bool:
    value = event.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value
