"""The ``devkit`` command. Its libraries (moto, tftest, the Lambda runtime libraries) come with the
``devkit`` extra; without them the command says how to install them instead of a traceback."""

from __future__ import annotations

import sys

EXTRA_HINT = "devkit needs its extra: pip install 'payment-platform[devkit]' (or `make venv` in a checkout)"


def main() -> None:
    try:
        from devkit.cli.main import cli  # noqa: PLC0415 - imported here to report a missing extra
    except ModuleNotFoundError as exc:
        sys.exit(f"{EXTRA_HINT}; missing module: {exc.name}")
    cli()
