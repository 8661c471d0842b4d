"""Emulator addresses and health checks without moto: what ``devkit up``/``devkit down`` and the test
fixtures need before (or instead of) starting the embedded server. Importing moto's server costs
seconds (every backend's URL table), so nothing here imports it; ``devkit.emulator.server`` does.
``devkit.emulator.server`` re-exports these names.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
LOCALSTACK_ENDPOINT = "http://127.0.0.1:4566"
BACKENDS = ("moto", "localstack")


class EmulatorError(RuntimeError):
    """The emulator could not start or is unreachable."""


def selected_backend(env_var: str = "E2E_BACKEND", default: str = "moto") -> str:
    """The emulator backend chosen by ``env_var`` (moto: embedded; localstack: Docker or on the host)."""
    backend = os.environ.get(env_var, "").strip().lower() or default
    if backend not in BACKENDS:
        raise ValueError(f"{env_var} must be moto or localstack, not {backend!r}")
    return backend


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (used when a port must be known before binding)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def probe(endpoint_url: str, timeout: float = 2.0) -> bool:
    """True when a moto server answers at ``endpoint_url``.

    Asks for ``/moto-api/config``: cheap whatever is deployed (``data.json`` serialises every
    backend and takes seconds once a full stack is applied).
    """
    try:
        with urllib.request.urlopen(  # noqa: S310 - loopback URL built by us
            f"{endpoint_url.rstrip('/')}/moto-api/config", timeout=timeout
        ) as resp:
            return bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def emulator_env(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """AWS_* variables that point SDKs (boto3, the ops CLI, handlers) at an emulator endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def emulator_clients(
    endpoint_url: str,
    *services: str,
    region: str = DEFAULT_REGION,
    config: Config | None = None,
    session: boto3.session.Session | None = None,
) -> tuple[Any, ...]:
    """boto3 clients for ``services`` at an emulator endpoint, in that order, made by ``session`` or
    else by a new session with the emulator's fake key (boto3 sessions are not thread-safe, so the
    emulator's worker threads never share boto3's default one).

    Typed as Any: they read loosely shaped documents back from the emulator.
    """
    session = session or boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - emulator credentials
        region_name=region,
    )
    return tuple(
        session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]
        for service in services
    )


def emulator_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` at an emulator endpoint, with the emulator's fake key."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - emulator credentials
        **kwargs,
    )


def localstack_health(endpoint_url: str = LOCALSTACK_ENDPOINT, timeout: float = 5.0) -> dict[str, Any]:
    """LocalStack's ``/_localstack/health`` document; raises EmulatorError when it does not answer."""
    url = f"{endpoint_url.rstrip('/')}/_localstack/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL
            health: dict[str, Any] = json.loads(resp.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EmulatorError(
            f"LocalStack does not answer at {url} ({exc}); start it with `docker compose up -d` "
            "(see docker-compose.yml) or use the embedded emulator (--backend moto)"
        ) from exc
    return health


class ExternalEmulator:
    """An emulator we did not start (LocalStack in Docker): same surface as ``Emulator``."""

    def __init__(self, endpoint_url: str = LOCALSTACK_ENDPOINT, region: str = DEFAULT_REGION) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.account_id = "000000000000"
        self.lambda_runtime_installed = False

    def start(self) -> ExternalEmulator:
        localstack_health(self.endpoint_url)
        return self

    def stop(self) -> None:
        """Nothing to stop: the container's lifecycle belongs to docker compose."""

    @property
    def running(self) -> bool:
        try:
            localstack_health(self.endpoint_url, timeout=2)
        except EmulatorError:
            return False
        return True

    def __enter__(self) -> ExternalEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        return emulator_env(self.endpoint_url, self.region)

    def client(self, service: str, **kwargs: Any) -> Any:
        return emulator_client(service, self.endpoint_url, kwargs.pop("region_name", self.region), **kwargs)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
