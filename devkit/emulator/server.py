"""The embedded AWS emulator: moto's WSGI app on a loopback port, configured and shimmed.

Used in-process by the test harness (``Emulator`` is a context manager) and as a detached process by
``devkit up`` (``python -m devkit.emulator``). Configuration that must be in place before the first
request — managed IAM policies, no-Docker Lambda, executing Step Functions — is applied by
``configure_moto`` before the server thread starts.

The HTTP server is waitress (HTTP/1.1 with keep-alive, a fixed pool of worker threads) rather than
moto's ``ThreadedMotoServer``: werkzeug's development server answers every request with
``Connection: close``, so every call of a parallel ``terraform apply`` opens a new TCP connection.
The intermittent "decomposing response: read tcp ...: use of closed network connection" failures on
200 responses are not the server's doing, though: they occur with both servers alike, and the client
(the AWS SDK for Go in the provider) closes the connection itself; see
``devkit.terraform.PROVIDER_MAX_ATTEMPTS`` and ``bench/results/hammer.md``.
Such a call had taken effect before its response was lost; :class:`devkit.emulator.sdk_retry.RetryReplay`
answers the SDK's retry of it from the first answer instead of running it twice.
``OPS_EMULATOR_SERVER=werkzeug`` selects moto's own server again, without that middleware (for
measurements: ``python -m bench.soak hammer --server werkzeug``).
Under waitress the deployed REST API stages answer HTTP on the same port, as LocalStack serves them
(``<endpoint>/restapis/<id>/<stage>/_user_request_/<path>``, :mod:`devkit.emulator.apigw_http`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from waitress import wasyncore  # type: ignore[import-untyped]  # waitress ships no type information
from waitress.server import create_server  # type: ignore[import-untyped]  # (no py.typed)

from devkit.emulator import iam_enforcement, lambda_runtime, shims, xray_fake
from devkit.emulator.apigw_http import StageGateway
from devkit.emulator.endpoints import (
    BACKENDS,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    LOCALSTACK_ENDPOINT,
    EmulatorError,
    ExternalEmulator,
    emulator_client,
    emulator_env,
    free_port,
    localstack_health,
    probe,
    selected_backend,
)
from devkit.emulator.sdk_retry import RetryReplay

__all__ = [
    "BACKENDS",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "LOCALSTACK_ENDPOINT",
    "Emulator",
    "EmulatorError",
    "ExternalEmulator",
    "configure_moto",
    "emulator_env",
    "free_port",
    "localstack_health",
    "probe",
    "selected_backend",
]

# "1"/"auto" (default) installs the Lambda runtime hook, "0" leaves functions to moto's own stub.
LAMBDA_RUNTIME_ENV = "OPS_EMULATOR_LAMBDA_RUNTIME"

START_TIMEOUT_S = 30.0

SERVER_ENV = "OPS_EMULATOR_SERVER"
SERVER_KINDS = ("waitress", "werkzeug")
# Worker threads of the waitress pool. A Lambda invocation holds its worker while the handler runs and
# the handler's own AWS calls (and Step Functions' lambda:invoke, which re-enters the server) need
# free workers: the pool must exceed Terraform's parallelism plus the invocations in flight.
WAITRESS_THREADS = 64

_configure_lock = threading.Lock()


def configure_moto() -> None:
    """Process-wide moto settings: must run before moto handles its first request.

    - IAM managed policies loaded (``aws_iam_role_policy_attachment`` on AWS-managed ARNs 404s
      otherwise);
    - ``lambda.use_docker = false``: there is no Docker here, and switching the Lambda backend later
      drops every function already created;
    - ``stepfunctions.execute_state_machine = true``: executions really run the definition instead
      of staying RUNNING forever.
    """
    with _configure_lock:
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        shims.check_moto_version()
        for section, key, value in (
            ("lambda", "use_docker", False),
            ("stepfunctions", "execute_state_machine", True),
            ("iam", "load_aws_managed_policies", True),
        ):
            settings = default_user_config.get(section)
            if not isinstance(settings, dict) or key not in settings:
                raise shims.ShimError(f"moto config {section}.{key} no longer exists")
            settings[key] = value
        shims.install_all()
        # The X-Ray control plane moto lacks (sampling rules, groups, encryption config, tags).
        xray_fake.install()
        # Behaviours the deployed code meets at run time (S3 bucket-policy conditions, Step Functions
        # JSONPath, DescribeAlarms filters); they apply to every client of the emulator, so install
        # them whether or not the Lambda runtime hook runs.
        shims.install_runtime()


def lambda_runtime_wanted(flag: bool | None = None) -> bool:
    """Resolve the Lambda runtime hook flag: explicit argument, else ``OPS_EMULATOR_LAMBDA_RUNTIME``."""
    if flag is not None:
        return flag
    setting = os.environ.get(LAMBDA_RUNTIME_ENV, "auto").strip().lower()
    return setting not in ("0", "false", "no", "off")


def iam_enforcement_wanted(flag: bool | None = None) -> bool:
    """Resolve the IAM flag: explicit argument, else ``OPS_EMULATOR_IAM`` (``enforce`` default, ``off``)."""
    if flag is not None:
        return flag
    setting = os.environ.get(iam_enforcement.ENV_VAR, "enforce").strip().lower()
    if setting in ("enforce", "on", "1", "true", "yes"):
        return True
    if setting in ("off", "0", "false", "no"):
        return False
    raise EmulatorError(f"{iam_enforcement.ENV_VAR} must be enforce or off, not {setting!r}")


def selected_server(kind: str | None = None) -> str:
    """The HTTP server for the emulator: explicit argument, else ``OPS_EMULATOR_SERVER``, else waitress."""
    chosen = (kind or os.environ.get(SERVER_ENV, "") or SERVER_KINDS[0]).strip().lower()
    if chosen not in SERVER_KINDS:
        raise EmulatorError(f"{SERVER_ENV} must be one of {', '.join(SERVER_KINDS)}, not {chosen!r}")
    return chosen


class WaitressServer:
    """moto's WSGI app under waitress on a background thread (same surface as ThreadedMotoServer)."""

    def __init__(
        self, host: str, port: int, *, threads: int = WAITRESS_THREADS, replay_retries: bool = True
    ) -> None:
        self._map: dict[int, Any] = {}
        app: Any = DomainDispatcherApplication(create_backend_app)
        # A retried SDK call whose first response was lost is answered, not run twice (see sdk_retry).
        # Off only to measure what it prevents (python -m bench.soak hammer --no-replay).
        self.replay = RetryReplay(app) if replay_retries else None
        # Deployed REST API stages, served as API Gateway would (moto answers them with a 500).
        self.gateway = StageGateway(self.replay or app)
        self._server: Any = create_server(
            self.gateway,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            # Terraform opens up to one connection per parallel operation and keeps them alive.
            connection_limit=1000,
            backlog=1024,
            # Idle keep-alive connections: the client must be the one to close them (the AWS SDK for Go
            # drops idle connections after 90 s). A server that closed first would race the client's
            # next request on that connection.
            channel_timeout=600,
            ident="moto",
        )
        self.gateway.endpoint_url = f"http://{self._server.effective_host}:{self._server.effective_port}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set() and self._map:
            wasyncore.loop(timeout=0.2, map=self._map, count=1)
        for channel in list(self._map.values()):
            channel.close()
        self._server.task_dispatcher.shutdown(timeout=5)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="emulator-waitress", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        return str(self._server.effective_host), int(self._server.effective_port)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


class Emulator:
    """moto server on a loopback port, shimmed for the Terraform AWS provider.

    >>> with Emulator() as emu:
    ...     boto3.client("sqs", endpoint_url=emu.endpoint_url, region_name=emu.region)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        *,
        lambda_runtime: bool | None = None,
        request_log: bool = False,
        server: str | None = None,
        iam: bool | None = None,
        replay_retries: bool = True,
    ) -> None:
        self.server_kind = selected_server(server)
        self.replay_retries = replay_retries
        self.iam_enforced = iam_enforcement_wanted(iam)
        self.host = host
        self.requested_port = port
        self.region = region
        self.lambda_runtime = lambda_runtime
        self.request_log = request_log
        self.account_id = DEFAULT_ACCOUNT_ID
        self.lambda_runtime_installed = False
        self._server: Any = None
        self._port: int | None = None

    # -------------------------------------------------------------------- lifecycle

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        configure_moto()
        # Requests signed with the administrator's key (Terraform, the harness) are never evaluated, so
        # enforcement can be on from the first request: only the functions' role credentials are checked.
        iam_enforcement.install(enforce=self.iam_enforced)
        if not self.request_log:
            # werkzeug logs every request at INFO: thousands of lines per terraform apply.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.requested_port:
            # werkzeug reports a busy port by exiting the server thread, and ThreadedMotoServer.start()
            # then waits forever for it to become ready: check first.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((self.host, self.requested_port))
                except OSError as exc:
                    raise EmulatorError(
                        f"cannot bind the emulator on {self.host}:{self.requested_port}: {exc}"
                    ) from exc
        server: Any
        if self.server_kind == "waitress":
            server = WaitressServer(self.host, self.requested_port, replay_retries=self.replay_retries)
        else:
            server = ThreadedMotoServer(ip_address=self.host, port=self.requested_port, verbose=False)
        starter = threading.Thread(target=server.start, daemon=True)
        starter.start()
        starter.join(START_TIMEOUT_S)
        if starter.is_alive():
            raise EmulatorError(f"the emulator did not start within {START_TIMEOUT_S:.0f} s on {self.host}")
        self._server = server
        _, self._port = server.get_host_and_port()
        if not probe(self.endpoint_url, timeout=10):
            self.stop()
            raise EmulatorError(f"emulator started but does not answer at {self.endpoint_url}")
        if lambda_runtime_wanted(self.lambda_runtime):
            lambda_runtime.install(self)
            self.lambda_runtime_installed = True
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            if self.lambda_runtime_installed:
                lambda_runtime.uninstall(self)
                self.lambda_runtime_installed = False
            server.stop()
            iam_enforcement.uninstall()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def replayed_retries(self) -> list[str]:
        """The calls whose SDK retry was answered from an earlier successful attempt (waitress only)."""
        replay = getattr(self._server, "replay", None)
        return list(replay.stats.replayed_calls) if replay is not None else []

    # -------------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorError("emulator not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for AWS SDKs and CLIs pointed at this emulator (fake credentials)."""
        return emulator_env(self.endpoint_url, self.region)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` pointed at the emulator."""
        return emulator_client(service, self.endpoint_url, kwargs.pop("region_name", self.region), **kwargs)

    def reset(self) -> None:
        """Drop every resource in every backend (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=30):  # noqa: S310 - loopback URL built by us
            pass

    def ready_info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": self.host,
            "port": self.port,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "lambda_runtime": self.lambda_runtime_installed,
            "server": self.server_kind,
            "iam_enforced": self.iam_enforced,
        }

    def write_ready_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.ready_info(), indent=2) + "\n")
        tmp.replace(path)
