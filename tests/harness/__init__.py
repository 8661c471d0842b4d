"""Tests of the test harness itself: the emulator's Lambda runtime, the API Gateway client, backends."""

from __future__ import annotations

import io
import textwrap
import zipfile
from collections.abc import Callable, Mapping
from typing import TypeVar

from devkit.demo import FlowError, wait_for

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> T:
    """``devkit.demo.wait_for`` with harness defaults, failing the test (AssertionError) on time-out."""
    try:
        result: T = wait_for(probe, timeout=timeout, interval=interval, what=what or repr(probe))
    except FlowError as exc:
        raise AssertionError(str(exc)) from None
    return result


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    """A function package: text entries are dedented sources, bytes entries go in as they are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in sorted(files.items()):
            archive.writestr(name, source if isinstance(source, bytes) else textwrap.dedent(source))
    return buffer.getvalue()
