"""``devkit``: build the Lambda package and run the whole platform on a local emulator."""

from __future__ import annotations

import click

from devkit.cli.build_cmd import build
from devkit.cli.local_cmd import down, env, tf_config, up
from ops import __version__
from ops.cli.context import CONTEXT_SETTINGS


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="devkit")
def cli() -> None:
    """Local development of the payment platform: `build` the Lambda zip, `up` the platform on an
    emulator (apply + demo), `down` to destroy it, `env` for your shell, `tf-config` for an offline
    `terraform init`. Operate a deployment with `ops`."""


cli.add_command(build)
cli.add_command(up)
cli.add_command(down)
cli.add_command(env)
cli.add_command(tf_config)
