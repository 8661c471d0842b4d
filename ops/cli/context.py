"""Shared CLI plumbing: the context object, option bundles, output helpers.

Every command takes the same AWS and output options (``aws_options``, ``output_options``); they are
accepted on the root group (``ops --json report``) and on each command (``ops report --json``), and
land in one ``OpsContext`` either way.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import boto3
import botocore.session
import click
from click.core import ParameterSource
from payments.sdkconfig import client_config
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ops.core.names import LOCAL_ENDPOINT_OUTPUT, NameResolver, load_outputs_file, terraform_outputs

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_REGION = "us-east-1"
# The static key of a local emulator (the endpoint named by a local stack's LOCAL_ENDPOINT_OUTPUT).
LOCAL_CREDENTIALS = "test"
# Per call: retries (botocore's retries.max_attempts counts those after the first attempt), connect
# and read time-outs (s). Jobs (report, cleanup, redrive) ride out throttling and slow pages; an
# interactive command answers within seconds or says it cannot (2 attempts in total).
PATIENT_CALLS: dict[str, Any] = {"max_attempts": 5, "connect_timeout": 10}
INTERACTIVE_CALLS: dict[str, Any] = {"max_attempts": 1, "connect_timeout": 2, "read_timeout": 5}
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "OPS", "show_default": True}


@dataclass
class GlobalOptions:
    """The options every command shares (root group or command line, environment twins)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    suffix: str | None = None
    tf_dir: str | None = None
    outputs_file: str | None = None
    json: bool = False
    verbose: int = 0
    quiet: bool = False
    # name -> rank of the source that set it (see _RANK): a value from the command line beats
    # one from the environment, wherever each was given (root group or command).
    sources: dict[str, int] = field(default_factory=dict)


class OpsContext:
    """One per invocation: settings, consoles, a boto3 session and the name resolver."""

    def __init__(self) -> None:
        self.settings = GlobalOptions()
        # file=None: rich writes to whatever sys.stdout/sys.stderr is at print time (CliRunner
        # swaps them). Colour and live rendering switch off by themselves when not a TTY.
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._names: NameResolver | None = None
        # Interactive commands (status, trace) want an answer in seconds, even from a dead
        # endpoint: set before the first client is made, it bounds retries and time-outs.
        self.interactive = False

    # -- output ----------------------------------------------------------------------------
    def info(self, message: str) -> None:
        if not self.settings.quiet:
            self.err.print(message)

    def debug(self, message: str) -> None:
        if self.settings.verbose and not self.settings.quiet:
            self.err.print(f"[dim]{message}[/dim]")

    def emit_json(self, data: Any) -> None:
        # Plain click.echo, not rich: machine output must not be wrapped or styled.
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))

    @contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
        """A stderr progress bar; yields ``advance(n)``. Silent with --quiet or --json."""
        if self.settings.quiet or self.settings.json:
            # Not even a disabled Progress: its Live display still writes a newline on exit.
            yield lambda _n: None
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err,
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total)

            def advance(n: float) -> None:
                progress.advance(task, n)

            yield advance

    # -- AWS -------------------------------------------------------------------------------
    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            typed_profile = self.settings.sources.get("profile", 0) >= _RANK[ParameterSource.COMMANDLINE]
            if self.local_endpoint() and not typed_profile:
                # A local emulator copy of the stack: its static test credentials, whatever the shell
                # holds (AWS_PROFILE included: real keys would be evaluated against the emulator's IAM,
                # and refused). Only a --profile typed on the command line is used there.
                # Not the shell's AWS_PROFILE (botocore would read it, and fail on a missing profile).
                core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
                self._session = boto3.Session(
                    aws_access_key_id=LOCAL_CREDENTIALS,
                    aws_secret_access_key=LOCAL_CREDENTIALS,
                    botocore_session=core,
                )
            else:
                self._session = boto3.Session(profile_name=self.settings.profile or None)
        return self._session

    def local_endpoint(self) -> str | None:
        """The emulator endpoint a local working copy of the stack names in its outputs
        (``aws_endpoint_url``), when no --endpoint-url was given; None for a real deployment."""
        if self.settings.endpoint_url or not self._has_outputs_source():
            return None
        value = self.names.outputs.get(LOCAL_ENDPOINT_OUTPUT)
        return str(value) if value else None

    @property
    def endpoint_url(self) -> str | None:
        return self.settings.endpoint_url or self.local_endpoint()

    @property
    def region(self) -> str:
        if self.settings.region:
            return self.settings.region
        if self.session.region_name:
            return str(self.session.region_name)
        from_outputs = self.names.outputs.get("region") if self._has_outputs_source() else None
        return str(from_outputs or DEFAULT_REGION)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            budget = INTERACTIVE_CALLS if self.interactive else PATIENT_CALLS
            config = client_config(
                **budget,
                max_pool_connections=64,  # parallel queries / scan segments share one client
                user_agent_extra="payment-ops",
                sdk_env_overrides=True,  # AWS_MAX_ATTEMPTS / AWS_RETRY_MODE still win, as with any AWS tool
            )
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                region_name=self.region,
                endpoint_url=self.endpoint_url or None,
                config=config,
            )
        return self._clients[service]

    # -- names -----------------------------------------------------------------------------
    def _has_outputs_source(self) -> bool:
        return bool(self.settings.outputs_file or self.settings.tf_dir)

    def _load_outputs(self) -> dict[str, Any]:
        if self.settings.outputs_file:
            return load_outputs_file(self.settings.outputs_file)
        if self.settings.tf_dir:
            tf_dir = Path(self.settings.tf_dir)
            self.debug(f"reading names from `terraform output -json` in {tf_dir}")
            if not tf_dir.is_dir():
                raise click.UsageError(f"--tf-dir {tf_dir}: no such directory")
            outputs = terraform_outputs(tf_dir)
            if not outputs:
                state = tf_dir / "terraform.tfstate"
                why = (
                    f"{state} holds no outputs"
                    if state.is_file()
                    else f"no Terraform state there ({state.name} missing, and no remote state with outputs)"
                )
                raise click.UsageError(
                    f"--tf-dir {tf_dir}: `terraform output -json` found no outputs: {why}. Pass the "
                    "directory of an applied root module (`terraform apply` there, or `make up` for "
                    ".local/<backend>/stack)."
                )
            return outputs
        return {}

    def account_id(self) -> str:
        return str(self.client("sts").get_caller_identity()["Account"])

    @property
    def names(self) -> NameResolver:
        if self._names is None:
            self._names = NameResolver(self._load_outputs, self.settings.suffix, self.account_id)
        return self._names


pass_ops = click.make_pass_decorator(OpsContext, ensure=True)


_RANK = {ParameterSource.COMMANDLINE: 2, ParameterSource.PROMPT: 2, ParameterSource.ENVIRONMENT: 1}


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record an option in the shared settings: the most explicit source wins (command line,
    then environment, then default), whether given on the root group or on the command."""
    state = ctx.ensure_object(OpsContext)
    name = str(param.name)
    source = ctx.get_parameter_source(name)
    rank = _RANK.get(source, 0) if source is not None else 0
    if rank >= state.settings.sources.get(name, 0):
        if name == "verbose" and rank == state.settings.sources.get(name, 0):
            value = max(int(value or 0), state.settings.verbose)
        setattr(state.settings, name, value)
        state.settings.sources[name] = rank
    if name == "verbose" and state.settings.verbose >= 2:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
        logging.getLogger("botocore").setLevel(logging.DEBUG)
    return value


def _opt(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, expose_value=False, callback=_store, show_envvar=True, **kwargs)


def aws_options(func: F) -> F:
    """Where AWS is and how names are found."""
    decorators = [
        _opt(
            "--endpoint-url",
            envvar="AWS_ENDPOINT_URL",
            metavar="URL",
            help="AWS endpoint override, e.g. http://127.0.0.1:5000 for the local emulator.",
        ),
        _opt(
            "--region",
            envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
            help=f"AWS region (default: profile's region, the `region` output, then {DEFAULT_REGION}).",
        ),
        _opt("--profile", envvar="AWS_PROFILE", help="Named AWS profile from the shared config files."),
        _opt(
            "--suffix",
            envvar="OPS_SUFFIX",
            help="Environment suffix; derives names by the rules of docs/interfaces.md.",
        ),
        _opt(
            "--tf-dir",
            envvar="OPS_TF_DIR",
            type=click.Path(file_okay=False),
            help="Applied root module: names are read from `terraform output -json` run there.",
        ),
        _opt(
            "--outputs-file",
            envvar="OPS_OUTPUTS_FILE",
            type=click.Path(dir_okay=False),
            help="JSON file of Terraform outputs (the `terraform output -json` shape or a plain map).",
        ),
    ]
    return functools.reduce(lambda f, d: d(f), reversed(decorators), func)


def output_options(func: F) -> F:
    """How results are shown."""
    decorators = [
        _opt("--json", "json", is_flag=True, envvar="OPS_JSON", help="Machine-readable JSON on stdout."),
        _opt(
            "-v",
            "--verbose",
            count=True,
            envvar="OPS_VERBOSE",
            help="More diagnostics on stderr (-vv: botocore debug logs).",
        ),
        _opt("-q", "--quiet", is_flag=True, envvar="OPS_QUIET", help="Only results: no progress or notes."),
    ]
    return functools.reduce(lambda f, d: d(f), reversed(decorators), func)


def command_options(func: Callable[Concatenate[OpsContext, P], R]) -> Callable[P, R]:
    """What every command takes: ``aws_options``, ``output_options``, and the OpsContext as its
    first argument."""
    return aws_options(output_options(pass_ops(func)))


def option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A command option whose environment-variable twin (OPS_<COMMAND>_<NAME>) shows in --help."""
    return click.option(*decls, show_envvar=True, **kwargs)


# Options that make a command destroy or overwrite data. They have no environment-variable
# twin: a variable left in a shell (OPS_CLEANUP_YES=1) must never turn a later command into a
# destructive one. Only a flag typed on the command line counts.
NO_ENV_OPTIONS: set[str] = set()


def destructive_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A flag that is read from the command line only (never from OPS_* variables)."""
    NO_ENV_OPTIONS.update(d.lstrip("-") for d in decls if d.startswith("--"))
    help_text = str(kwargs.pop("help", "")) + " Command line only: no environment variable sets it."
    return click.option(*decls, allow_from_autoenv=False, show_envvar=False, help=help_text, **kwargs)
