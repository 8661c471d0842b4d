"""``devkit up`` / ``devkit down``: the whole platform on a local emulator with one command."""

from __future__ import annotations

import json
import time
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
from rich.table import Table
from rich.text import Text

from devkit.build import BuildError, default_architecture
from devkit.cli.build_cmd import architecture_option
from devkit.emulator.endpoints import emulator_env
from devkit.local import BACKENDS, DEFAULT_SUFFIX, LocalError, oncall_rows
from devkit.local import down as local_down
from devkit.local import up as local_up
from devkit.terraform import REPO_ROOT, ApplyProgress, TerraformError
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
        return Text(
            f"{int(task.completed)}/{int(task.total)} changes" + (f", {failed} failed" if failed else "")
        )


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

    def __enter__(self) -> _Display:
        if self.interactive:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                _ChangesBar(bar_width=30),
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
            self._progress.update(self._task, description=message, current="")

    def changes(self, progress: ApplyProgress) -> None:
        """Show ``progress``: the bar on a terminal, a plain line per tenth of the total elsewhere."""
        if self._progress is not None and self._task is not None:
            current = progress.current if len(progress.current) <= 60 else "..." + progress.current[-57:]
            self._progress.update(
                self._task,
                description=self.action
                if progress.total is not None
                else f"{self.action}: {progress.describe()}",
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
            raise click.ClickException(str(exc)) from exc

    if as_json:
        visible = {k: ("<sensitive>" if k in result.sensitive else v) for k, v in result.outputs.items()}
        click.echo(json.dumps(visible, indent=2, sort_keys=True))
        if result.demo_error:
            raise click.ClickException(f"the demo failed: {result.demo_error}")
        return

    out = Console(highlight=False)
    summary = Table(title=f"payment platform on {backend} ({result.endpoint_url})", show_lines=False)
    summary.add_column("output", style="bold")
    summary.add_column("value", overflow="fold")
    for key in _SUMMARY_KEYS:
        if key in result.outputs and key not in result.sensitive:
            summary.add_row(key, str(result.outputs[key]))
    out.print(summary)
    rows = oncall_rows(result.outputs)
    if rows:
        links = Table(title="on-call links")
        links.add_column("kind", style="bold")
        links.add_column("name")
        links.add_column("url", overflow="fold")
        for row in rows:
            links.add_row(*row)
        out.print(links)
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    outputs_path = (REPO_ROOT / ".local" / backend / "outputs.json").relative_to(REPO_ROOT)
    err.print(f"[green]up[/green]: {result.resource_count} resources ({timings})")
    err.print(
        "use it: "
        + " ".join(f"{k}={v}" for k, v in sorted(emulator_env(result.endpoint_url, result.region).items()))
        + f" ops --outputs-file {outputs_path} report"
    )
    if result.demo_error:
        raise click.ClickException(
            f"the demo failed: {result.demo_error}\n(the platform is deployed; see .local/emulator.log)"
        )


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
