"""The botocore ``Config`` of every AWS client the code creates, built in one place.

Three users, each with its own time-outs and retry budget: the functions (``payments.clients``:
bounded so an API caller gets its answer inside the gateway's 29 s), the scheduled jobs
(``payments.jobs.runtime``: patient, many parallel connections) and the operator CLI
(``ops.cli.context``). botocore only, so the CLI can use it without the Lambda libraries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config

from payments import config


def client_config(
    *,
    max_attempts: int,
    connect_timeout: float,
    read_timeout: float | None = None,
    max_pool_connections: int | None = None,
    user_agent_extra: str | None = None,
    sdk_env_overrides: bool = False,
) -> Config:
    """Standard retry mode (it already backs off on throttling) with ``max_attempts`` in total.

    ``None`` keeps botocore's default (read time-out 60 s, 10 pooled connections, no user-agent
    suffix). With ``sdk_env_overrides``, ``AWS_RETRY_MODE=legacy`` and ``AWS_MAX_ATTEMPTS`` win over
    the values given here, as with any AWS tool.
    """
    mode = "standard"
    if sdk_env_overrides:
        mode, max_attempts = config.sdk_retry_overrides(max_attempts)
    options: dict[str, Any] = {
        "retries": {"mode": mode, "max_attempts": max_attempts},
        "connect_timeout": connect_timeout,
    }
    if read_timeout is not None:
        options["read_timeout"] = read_timeout
    if max_pool_connections is not None:
        options["max_pool_connections"] = max_pool_connections
    if user_agent_extra is not None:
        options["user_agent_extra"] = user_agent_extra
    return Config(**options)


class ClientCache:
    """One botocore client per service, created on first use and shared by every caller.

    botocore directly, not boto3: boto3 would add its resource layer and s3transfer to every cold
    start. ``region`` is asked once per client (``None``: botocore's own resolution from the
    environment). ``reset()`` forgets the clients and the session (tests switch accounts).
    """

    def __init__(self, config: Config, region: Callable[[], str | None] = lambda: None) -> None:
        self._config = config
        self._region = region
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: botocore.session.Session | None = None

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    if self._session is None:
                        self._session = botocore.session.get_session()
                    client = self._session.create_client(
                        service, region_name=self._region(), config=self._config
                    )
                    self._clients[service] = client
        return client

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._session = None
