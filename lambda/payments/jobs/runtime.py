"""Configuration and clients of the scheduled Lambda jobs (report, cleanup), read in one place.

The jobs run the same ``ops.core`` code as the ``ops`` CLI. Their clients are tuned for batch
work rather than the API path: a connection per parallel query/segment and more patient retries
(no caller is waiting on a 29 s gateway timeout).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=60,
)
_lock = threading.Lock()
_clients: dict[str, Any] = {}


@dataclass(frozen=True)
class JobSettings:
    table: str
    by_day_index: str
    day_shards: int
    archive_bucket: str


def settings() -> JobSettings:
    env = os.environ
    shards = int(env.get("DAY_SHARDS") or "16")
    if shards < 1:
        raise ValueError("DAY_SHARDS must be at least 1")
    return JobSettings(
        table=env["TRANSACTIONS_TABLE"],
        by_day_index=env.get("BY_DAY_INDEX") or "by-day",
        day_shards=shards,
        archive_bucket=env["ARCHIVE_BUCKET"],
    )


def client(service: str) -> Any:
    """One client per service per container, created on first use."""
    with _lock:
        if service not in _clients:
            _clients[service] = boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]
        return _clients[service]


def reset() -> None:
    """Forget clients (tests switch between emulated accounts)."""
    with _lock:
        _clients.clear()


def flag(event: dict[str, Any], name: str, default: bool) -> bool:
    value = event.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def remaining_seconds(context: Any) -> float | None:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() / 1000 if callable(getter) else None
