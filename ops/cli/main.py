"""Root command group: registers the commands and turns operational errors into exit code 1."""

from __future__ import annotations

from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from payments.pan import mask_pans

from ops import __version__
from ops.cli import cleanup, clients, links, redrive, report, restore, status, trace
from ops.cli.context import CONTEXT_SETTINGS, OpsContext, aws_options, output_options
from ops.core import JobError


class OpsGroup(click.Group):
    """Exit codes: 0 ok, 1 operation failed (AWS or data error, reported on stderr), 2 usage."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            # A usage error quotes what was typed ("unexpected extra argument (...)"): a card
            # number pasted by mistake must not be echoed back, on any stream.
            exc.message = mask_pans(exc.message)
            raise
        except JobError as exc:
            raise click.ClickException(mask_pans(str(exc))) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise click.ClickException(
                f"AWS {exc.operation_name} failed: {error.get('Code', '?')}: {error.get('Message', exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise click.ClickException(f"AWS request failed: {exc}") from exc


@click.group(cls=OpsGroup, context_settings=CONTEXT_SETTINGS)
@aws_options
@output_options
@click.version_option(__version__, prog_name="ops")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Operate the payment platform: reports, retention cleanup, DLQ redrive, on-call links, restore drills.

    Names come from flags, from Terraform outputs (--tf-dir / --outputs-file) or from the
    environment suffix (--suffix). Every option has an environment-variable twin.
    """
    ctx.ensure_object(OpsContext)


cli.add_command(report.report)
cli.add_command(cleanup.cleanup)
cli.add_command(redrive.redrive)
cli.add_command(links.links)
cli.add_command(trace.trace)
cli.add_command(status.status)
cli.add_command(restore.restore)
cli.add_command(clients.clients)
