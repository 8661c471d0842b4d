"""``devkit up`` / ``devkit down``: the whole platform on a local emulator with one command."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from devkit.build import BuildError, default_architecture
from devkit.cli.build_cmd import architecture_option
from devkit.local import BACKENDS, DEFAULT_SUFFIX, LocalError, oncall_rows
from devkit.local import down as local_down
from devkit.local import up as local_up
from devkit.terraform import REPO_ROOT, TerraformError

_RESOURCE_DONE = re.compile(r": (Creation|Destruction|Modifications) complete after")
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


def _backend_option(func: Any) -> Any:
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="moto",
        envvar="OPS_BACKEND",
        show_envvar=True,
        show_default=True,
        help=(
            "moto: embedded emulator started in the background; localstack: the one on :4566 "
            "(`docker compose up -d`), else LocalStack without Docker, installed and started here."
        ),
    )(func)


@click.command("up")
@_backend_option
@click.option(
    "--demo/--no-demo",
    default=True,
    envvar="OPS_DEMO",
    show_envvar=True,
    show_default=True,
    help="Run the demo (payments, report, links) after the apply when the demo hook is installed.",
)
@click.option(
    "--suffix",
    default=DEFAULT_SUFFIX,
    envvar="OPS_LOCAL_SUFFIX",
    show_envvar=True,
    show_default=True,
    help="environment_suffix of the local deployment.",
)
@architecture_option("Lambda architecture (package and Terraform variable).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="OPS_UP_JSON",
    show_envvar=True,
    help="Print the outputs as JSON.",
)
def up(backend: str, demo: bool, suffix: str, architecture: str | None, as_json: bool) -> None:
    """Build the package, start the emulator, apply the platform and print outputs and on-call links."""
    err = Console(stderr=True, highlight=False)
    done = 0
    started = time.monotonic()
    with err.status("starting...") as status:

        def on_line(line: str) -> None:
            nonlocal done
            if _RESOURCE_DONE.search(line):
                done += 1
                status.update(f"terraform apply: {done} resources done ({time.monotonic() - started:.0f} s)")

        def say(message: str) -> None:
            err.print(f"[cyan]>[/cyan] {message}")
            status.update(message)

        try:
            result = local_up(
                backend=backend,
                suffix=suffix,
                architecture=architecture or default_architecture(),
                demo=demo,
                progress=say,
                on_terraform_line=on_line,
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
        + " ".join(f"{k}={v}" for k, v in sorted(_env_hint(result.endpoint_url, result.region).items()))
        + f" ops --outputs-file {outputs_path} report"
    )
    if result.demo_error:
        raise click.ClickException(
            f"the demo failed: {result.demo_error}\n(the platform is deployed; see .local/emulator.log)"
        )


def _env_hint(endpoint_url: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region,
    }


@click.command("down")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    envvar="OPS_BACKEND",
    show_envvar=True,
    help="Only this backend's deployment (default: every local deployment found).",
)
def down(backend: str | None) -> None:
    """Destroy the local platform, stop the emulator and remove local state (safe to repeat)."""
    err = Console(stderr=True, highlight=False)
    with err.status("terraform destroy...") as status:

        def say(message: str) -> None:
            err.print(f"[cyan]>[/cyan] {message}")
            status.update(message)

        try:
            result = local_down(backend=backend, progress=say)
        except (LocalError, TerraformError) as exc:
            raise click.ClickException(str(exc)) from exc
    what = "destroyed" if result.destroyed else "nothing deployed"
    err.print(
        f"[green]down[/green]: {what}; emulator {'stopped' if result.emulator_stopped else 'not running'}"
    )
