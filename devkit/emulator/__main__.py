"""``python -m devkit.emulator``: run the shimmed moto server until SIGTERM/SIGINT.

Writes ``--ready-file`` (JSON: pid, host, port, endpoint_url, region) once the server answers, so a
parent process can start it detached and wait for it without parsing logs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devkit.emulator.server import DEFAULT_REGION, Emulator, EmulatorError
from devkit.emulator.shims import ShimError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devkit.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--region", default=DEFAULT_REGION, help="region reported in the ready file")
    parser.add_argument("--ready-file", type=Path, help="write connection details here once serving")
    parser.add_argument("--request-log", action="store_true", help="log every request (werkzeug)")
    parser.add_argument(
        "--no-lambda-runtime",
        action="store_true",
        help="do not install the Lambda runtime hook even if devkit.emulator.lambda_runtime exists",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("devkit.emulator")
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emulator = Emulator(
        args.host,
        args.port,
        args.region,
        lambda_runtime=False if args.no_lambda_runtime else None,
        request_log=args.request_log,
    )
    try:
        emulator.start()
    except (EmulatorError, ShimError) as exc:
        log.error("emulator failed to start: %s", exc)
        return 1
    try:
        if args.ready_file is not None:
            emulator.write_ready_file(args.ready_file)
        log.info(
            "serving at %s (region %s, lambda runtime %s, IAM %s, %s)",
            emulator.endpoint_url,
            emulator.region,
            "on" if emulator.lambda_runtime_installed else "off",
            "enforced" if emulator.iam_enforced else "not enforced",
            emulator.server_kind,
        )
        while not stop.wait(3600):
            pass
    finally:
        emulator.stop()
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
