"""``devkit up`` / ``devkit down``: the whole platform on a local emulator with one command."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from devkit.build import BuildError, default_architecture
from devkit.cli.build_cmd import architecture_option
from devkit.demo import curl_create, curl_status
from devkit.local import (
    BACKENDS,
    DEFAULT_SUFFIX,
    LocalError,
    api_key,
    curl_token,
    export_lines,
    local_env,
    oncall_rows,
)
from devkit.local import down as local_down
from devkit.local import up as local_up
from devkit.terraform import REPO_ROOT, ApplyProgress, TerraformError, find_provider_mirror, terraform_env
from ops.cli.context import option

_SUMMARY_KEYS = (
    "api_invoke_url",
    "transactions_table_name",
    "audit_table_name",
    "idempotency_table_name",
    "audit_queue_url",
    "failed_queue_url",
    "dlq_url",
    "events_topic_arn",
    "failed_topic_arn",
    "alerts_topic_arn",
    "archive_bucket_name",
    "state_machine_arn",
    "dashboard_name",
)


class _ChangesBar(BarColumn):
    """The bar, once the plan's total of changes is known (a spinner and the step before that)."""

    def render(self, task: Task) -> Any:
        return super().render(task) if task.total is not None else Text("")


class _ChangesCount(ProgressColumn):
    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        failed = int(task.fields.get("failed", 0))
        return Text(_count_text(int(task.completed), int(task.total), failed))


def _count_text(done: int, total: int, failed: int) -> str:
    return f"{done}/{total}" + (f", {failed} failed" if failed else "")


def _shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, keeping its end (a resource address's most telling part)."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1 :] if width > 1 else ""


# Elapsed time as the bar shows it (h:mm:ss), and the gaps between its six columns.
_ELAPSED_WIDTH = len("0:00:00")
_COLUMN_GAPS = 5


class _Display:
    """Step messages, and terraform's resource changes done out of the total.

    On a terminal: a rich progress bar under the step messages. Anywhere else (CI, pipes): plain
    lines only, the count printed at every tenth of the total.
    """

    def __init__(self, console: Console, action: str) -> None:
        self.console = console
        self.action = action
        self.interactive = console.is_terminal and not console.is_dumb_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = time.monotonic()
        self._printed_tenth = 0
        self._announced_total: int | None = None
        self._last_line = ""
        self._bar_width = 30

    def __enter__(self) -> _Display:
        if self.interactive:
            self._bar_width = min(30, max(10, self.console.width // 6))
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                _ChangesBar(bar_width=self._bar_width),
                _ChangesCount(),
                TimeElapsedColumn(),
                TextColumn("[dim]{task.fields[current]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting...", total=None, current="", failed=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def say(self, message: str) -> None:
        # The message as written (no markup: command output may hold brackets) and never folded:
        # the demo's report and links must stay copyable, a URL whole on one line.
        self.console.print(Text.assemble((">", "cyan"), " ", message), soft_wrap=True)
        if self._progress is not None and self._task is not None:
            first = message.splitlines()[0] if message else ""
            self._progress.update(self._task, description=_shorten(first, 40), current="")

    def changes(self, progress: ApplyProgress) -> None:
        """Show ``progress``: the bar on a terminal, a plain line per tenth of the total elsewhere."""
        if self._progress is not None and self._task is not None:
            description = (
                self.action if progress.total is not None else f"{self.action}: {progress.describe()}"
            )
            # The count and the elapsed time always fit; the resource being changed gets what is left.
            count = len(_count_text(progress.finished, progress.total or 0, progress.failed))
            fixed = 1 + len(description) + self._bar_width + count + _ELAPSED_WIDTH + _COLUMN_GAPS + 1
            current = _shorten(progress.current, self.console.width - fixed)
            self._progress.update(
                self._task,
                description=_shorten(description, self.console.width - 20),
                total=progress.total,
                completed=progress.finished,
                failed=progress.failed,
                current=current if progress.phase == "applying" else "",
            )
        elif progress.total is not None and progress.total != self._announced_total:
            self._announced_total = progress.total
            self.console.print(f"{self.action}: {progress.total} resource changes planned")
        elif progress.total:
            tenth = progress.finished * 10 // progress.total
            if tenth > self._printed_tenth and progress.phase != "complete":
                self._printed_tenth = tenth
                self._line(progress)
        if progress.phase == "complete":
            self._line(progress)

    def _line(self, progress: ApplyProgress) -> None:
        """One plain line with the count, unless the last one said the same."""
        text = f"{self.action}: {progress.describe()}"
        if text != self._last_line:
            self._last_line = text
            self.console.print(f"{text} ({time.monotonic() - self._started:.0f} s)", highlight=False)


def _backend_option(func: Any) -> Any:
    return option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="moto",
        envvar="OPS_BACKEND",
        show_default=True,
        help=(
            "moto: embedded emulator started in the background; localstack: the one on :4566 "
            "(`docker compose up -d`), else LocalStack without Docker, installed and started here."
        ),
    )(func)


@click.command("up")
@_backend_option
@option(
    "--demo/--no-demo",
    default=True,
    envvar="OPS_DEMO",
    show_default=True,
    help="Run the demo (payments, report, links) after the apply when the demo hook is installed.",
)
@option(
    "--suffix",
    default=DEFAULT_SUFFIX,
    envvar="OPS_LOCAL_SUFFIX",
    show_default=True,
    help="environment_suffix of the local deployment.",
)
@architecture_option("Lambda architecture (package and Terraform variable).")
@option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="OPS_UP_JSON",
    help="Print the outputs as JSON.",
)
def up(backend: str, demo: bool, suffix: str, architecture: str | None, as_json: bool) -> None:
    """Build the package, start the emulator, apply the platform and print outputs and on-call links."""
    err = Console(stderr=True, highlight=False)
    with _Display(err, "terraform apply") as display:
        try:
            result = local_up(
                backend=backend,
                suffix=suffix,
                architecture=architecture or default_architecture(),
                demo=demo,
                progress=display.say,
                on_apply_progress=display.changes,
            )
        except (LocalError, BuildError, TerraformError) as exc:
            # What was started (the emulator, a partial apply) stays for inspection; one command clears it.
            raise click.ClickException(f"{exc}\nto clean up, run: make down") from exc

    if as_json:
        visible = {k: ("<sensitive>" if k in result.sensitive else v) for k, v in result.outputs.items()}
        click.echo(json.dumps(visible, indent=2, sort_keys=True))
        if result.demo_error:
            raise click.ClickException(f"the demo failed: {result.demo_error}")
        return

    # Plain lines on stdout, never folded by a console: every value and URL stays whole and copyable.
    click.echo(f"payment platform on {backend} ({result.endpoint_url})")
    for key in _SUMMARY_KEYS:
        if key in result.outputs and key not in result.sensitive:
            click.echo(f"  {key}  {result.outputs[key]}")
    if not result.demo_transactions:
        # The demo prints the links (`ops links --format plain`); without it, here, once.
        for _kind, name, url in oncall_rows(result.outputs):
            click.echo(f"  {name}  {url}")
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    err.print(f"[green]up[/green]: {result.resource_count} resources ({timings})")
    for line in next_steps(result.outputs, result.stack_dir, result.demo_transactions):
        click.echo(line)
    if result.demo_error:
        raise click.ClickException(
            f"the demo failed: {result.demo_error}\n(the platform is deployed; see .local/emulator.log)"
        )


def next_steps(
    outputs: Mapping[str, Any], stack_dir: Path, demo_transactions: Mapping[str, str] | None = None
) -> list[str]:
    """What to paste next: a payment and its status with ``curl`` (one line each), ``ops`` and the shell
    variables."""
    lines = []
    url, key = outputs.get("api_invoke_url"), api_key(outputs)
    if url and key:
        # Every route but /health wants a client's bearer token beside the usage-plan key.
        try:
            token = curl_token(outputs, stack_dir)
        except Exception as exc:
            token = None
            why = f"{type(exc).__name__}: {exc}"
            lines += ["", f"# (no local curl client: {why}; the requests below answer 401)"]
        lines += ["", "# create a payment (202 with its transaction_id):", curl_create(str(url), key, token)]
        shown = next(iter(demo_transactions or {}), None)
        lines += ["# read a payment's status (here: the demo's first):"]
        lines += [curl_status(str(url), key, shown or "TRANSACTION_ID", token)]
    tf_dir = stack_dir.relative_to(REPO_ROOT) if stack_dir.is_relative_to(REPO_ROOT) else stack_dir
    lines += ["", "# operate it, and the variables for your shell:"]
    lines += [f".venv/bin/ops --tf-dir {tf_dir} status", 'eval "$(.venv/bin/devkit env)"']
    return lines


@click.command("down")
@option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    envvar="OPS_BACKEND",
    help="Only this backend's deployment (default: every local deployment found).",
)
def down(backend: str | None) -> None:
    """Destroy the local platform, stop the emulator and remove local state (safe to repeat)."""
    err = Console(stderr=True, highlight=False)
    with _Display(err, "terraform destroy") as display:
        try:
            result = local_down(backend=backend, progress=display.say, on_destroy_progress=display.changes)
        except (LocalError, TerraformError) as exc:
            raise click.ClickException(str(exc)) from exc
    what = "destroyed" if result.destroyed else "nothing deployed"
    err.print(
        f"[green]down[/green]: {what}; emulator {'stopped' if result.emulator_stopped else 'not running'}"
    )


@click.command("env")
@option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    envvar="OPS_BACKEND",
    help="The local deployment to describe (default: the only one there is).",
)
@option(
    "--tf-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A local stack's working copy to read instead (`terraform output -json` there).",
)
def env(backend: str | None, tf_dir: Path | None) -> None:
    """Print `export` lines for the local deployment: the emulator's AWS variables, OPS_TF_DIR, and
    API_URL/API_KEY for curl. Use: eval "$(.venv/bin/devkit env)"."""
    try:
        lines = export_lines(local_env(backend, tf_dir))
    except LocalError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in lines:
        click.echo(line)


@click.command("tf-config")
def tf_config() -> None:
    """Write the Terraform CLI config that installs providers from the local mirror (for a plain
    `terraform init` on a machine without registry access) and print its `export` line."""
    try:
        config = terraform_env().get("TF_CLI_CONFIG_FILE")
    except TerraformError as exc:
        raise click.ClickException(str(exc)) from exc
    mirror = find_provider_mirror()
    if not config or mirror is None:
        click.echo("no local provider mirror found: terraform init uses the registry", err=True)
        return
    click.echo(f"# providers from {mirror}", err=True)
    click.echo(f"export TF_CLI_CONFIG_FILE={shlex.quote(config)}")
