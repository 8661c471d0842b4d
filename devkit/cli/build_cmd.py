"""``devkit build``: the reproducible Lambda package (same sources → same bytes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from devkit.build import DEFAULT_OUTPUT, BuildError, build_package, default_architecture, human_size
from ops.cli.context import option


def architecture_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--architecture`, shared by `build` and `up` so both build for the same Lambda architecture."""
    return option(
        "--architecture",
        type=click.Choice(["arm64", "x86_64"]),
        default=None,
        envvar="OPS_LAMBDA_ARCHITECTURE",
        show_default="the root module's lambda_architecture default",
        help=help_text,
    )


@click.command("build")
@architecture_option(
    "Lambda architecture the vendored dependencies are installed for (Terraform's lambda_architecture)."
)
@option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=DEFAULT_OUTPUT,
    envvar="OPS_BUILD_OUTPUT",
    show_default=True,
    help="Where to write the zip (a .sha256 file with filebase64sha256 lands beside it).",
)
@option(
    "--offline",
    is_flag=True,
    envvar="OPS_BUILD_OFFLINE",
    help="Fail instead of downloading dependencies that are not in build/cache yet.",
)
@option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="OPS_BUILD_JSON",
    help="Print the result as JSON.",
)
def build(architecture: str | None, output: Path, offline: bool, as_json: bool) -> None:
    """Build build/lambda/payment-app.zip reproducibly (vendored deps, fixed timestamps, sorted entries)."""
    err = Console(stderr=True, highlight=False)
    try:
        architecture = architecture or default_architecture()
        with err.status(f"building the Lambda package for {architecture}..."):
            result = build_package(architecture=architecture, output=output, offline=offline)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(
            json.dumps(
                {
                    "path": str(result.path),
                    "sha256_base64": result.sha256_b64,
                    "sha256_hex": result.sha256_hex,
                    "size": result.size,
                    "entries": result.entries,
                    "architecture": result.architecture,
                    "changed": result.changed,
                    "dependencies_from_cache": result.deps_from_cache,
                },
                indent=2,
            )
        )
        return
    click.echo(str(result.path))
    err.print(
        f"[bold]{human_size(result.size)}[/bold], {result.entries} files, {result.architecture}; "
        f"sha256 {result.sha256_b64} "
        f"({'rewritten' if result.changed else 'unchanged'}, dependencies "
        f"{'from cache' if result.deps_from_cache else 'installed'}, {result.seconds:.1f} s)"
    )
