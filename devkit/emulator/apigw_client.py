"""Call the deployed REST API, on moto (emulated gateway) or on LocalStack (real HTTP).

For ``E2E_BACKEND=moto`` requests go to :class:`devkit.emulator.apigw.EmulatedRestApi`, which plays API
Gateway from the configuration the emulator reports; for ``E2E_BACKEND=localstack`` they go to
LocalStack's gateway over HTTP. Tests and the demo talk to :class:`ApiClient` only and run unchanged on
both.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

import boto3

from devkit.emulator.apigw import EmulatedRestApi, Response

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "LOCALSTACK_DEFAULT_ENDPOINT",
    "ApiClient",
    "LocalStackHttp",
    "Response",
    "Transport",
    "backend_from_env",
    "detect_backend",
]

BACKENDS = ("moto", "localstack")
BACKEND_ENV = "E2E_BACKEND"
LOCALSTACK_DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


def backend_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The backend named by ``E2E_BACKEND`` (default ``moto``); anything else is a configuration error."""
    value = (environ if environ is not None else os.environ).get(
        BACKEND_ENV, "moto"
    ).strip().lower() or "moto"
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r}: expected one of {', '.join(BACKENDS)}")
    return value


def detect_backend(endpoint_url: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``E2E_BACKEND`` when set; otherwise ``localstack`` if the endpoint answers LocalStack's health
    check, else ``moto`` (how ``devkit up``'s demo picks the transport for the emulator it just used)."""
    env = environ if environ is not None else os.environ
    if env.get(BACKEND_ENV, "").strip():
        return backend_from_env(env)
    if endpoint_url and endpoint_url.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(  # noqa: S310 - scheme checked above
                f"{endpoint_url.rstrip('/')}/_localstack/health", timeout=2
            ) as resp:
                if resp.status == 200 and "services" in json.loads(resp.read() or b"{}"):
                    return "localstack"
        except (urllib.error.URLError, OSError, ValueError):
            pass
    return "moto"


class Transport(Protocol):
    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None, query: Mapping[str, str]
    ) -> Response: ...


class ApiClient:
    """``request(method, path, headers, body)`` against the deployed stage, whichever backend runs it."""

    def __init__(
        self,
        backend: str,
        *,
        rest_api_id: str,
        stage: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        session: boto3.session.Session | None = None,
        timeout: float = 60.0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown API backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.rest_api_id = rest_api_id
        self.stage = stage
        self.transport: Transport
        if backend == "moto":
            if not endpoint_url:
                raise ValueError("the moto backend needs the emulator's endpoint_url")
            self.transport = EmulatedRestApi(
                rest_api_id, stage, endpoint_url=endpoint_url, region=region, session=session
            )
        else:
            self.transport = LocalStackHttp(
                rest_api_id, stage, endpoint_url=endpoint_url or LOCALSTACK_DEFAULT_ENDPOINT, timeout=timeout
            )

    @classmethod
    def from_outputs(
        cls,
        outputs: Mapping[str, Any],
        *,
        endpoint_url: str | None,
        backend: str | None = None,
        **kwargs: Any,
    ) -> ApiClient:
        """Build from ``terraform output -json`` values (plain values, not the ``{"value": ...}`` wrapper)."""
        return cls(
            backend or backend_from_env(),
            rest_api_id=str(outputs["api_id"]),
            stage=str(outputs["api_stage_name"]),
            endpoint_url=endpoint_url,
            region=str(outputs.get("region") or "us-east-1"),
            **kwargs,
        )

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        query: Mapping[str, str] | None = None,
    ) -> Response:
        if body is None or isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = json.dumps(body).encode("utf-8")
        merged = dict(headers or {})
        if raw is not None and not any(k.lower() == "content-type" for k in merged):
            merged["Content-Type"] = "application/json"
        return self.transport.request(method.upper(), path, merged, raw, dict(query or {}))

    def get(self, path: str, headers: Mapping[str, str] | None = None, **kw: Any) -> Response:
        return self.request("GET", path, headers, **kw)

    def post(self, path: str, body: Any, headers: Mapping[str, str] | None = None, **kw: Any) -> Response:
        return self.request("POST", path, headers, body, **kw)


# -- LocalStack: real HTTP ---------------------------------------------------------------------------------


class LocalStackHttp:
    """LocalStack serves every deployed stage under ``/restapis/<id>/<stage>/_user_request_/<path>``."""

    def __init__(self, rest_api_id: str, stage: str, *, endpoint_url: str, timeout: float) -> None:
        self.base = f"{endpoint_url.rstrip('/')}/restapis/{rest_api_id}/{stage}/_user_request_"
        self.timeout = timeout

    def url(self, path: str, query: Mapping[str, str]) -> str:
        url = self.base + "/" + path.lstrip("/")
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None, query: Mapping[str, str]
    ) -> Response:
        url = self.url(path, query)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"refusing non-HTTP URL {url}")
        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - scheme checked above
                return Response(
                    resp.status, dict(resp.headers.items()), resp.read().decode("utf-8", "replace")
                )
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers.items()), err.read().decode("utf-8", "replace"))
