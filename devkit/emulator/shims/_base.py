"""What every shim module shares: the pinned moto version, the one error type and the patch helpers.

Every patch goes through :func:`require`: if moto changes (a different version, a renamed attribute),
start-up fails with a clear message instead of a shim silently doing nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import moto

PINNED_MOTO_VERSION = "5.2.5"
# "module.Class.attribute" of every patch installed in this process.
PATCHED: list[str] = []


class ShimError(RuntimeError):
    """moto does not look like the version these shims were written against."""


def require(owner: Any, name: str) -> Any:
    """Return ``owner.name`` or fail loudly: a shim must never silently stop applying."""
    if not hasattr(owner, name):
        raise ShimError(
            f"moto shim target {getattr(owner, '__name__', owner)}.{name} no longer exists; "
            f"review devkit/emulator/shims/ against moto {moto_version()}"
        )
    return getattr(owner, name)


def absent(owner: Any, name: str) -> None:
    """Fail loudly if moto grew a real implementation we would otherwise shadow."""
    if hasattr(owner, name):
        raise ShimError(
            f"moto now implements {getattr(owner, '__name__', owner)}.{name}; drop the shim in "
            "devkit/emulator/shims/ instead of shadowing it"
        )


def patch(owner: Any, name: str, value: Any) -> None:
    """Install one patched attribute on a moto class (recorded for diagnostics)."""
    setattr(owner, name, value)
    PATCHED.append(f"{owner.__module__}.{owner.__name__}.{name}")


def serialize(owner: Any, names: Iterable[str], lock: threading.RLock) -> None:
    """Patch each method ``names`` of ``owner`` to run under ``lock``, one call at a time (for moto
    backends whose state is not safe under the server's threads); a method already wrapped is left
    as it is, so installing twice is harmless."""
    for name in names:
        original = require(owner, name)
        if getattr(original, "_serialized_shim", False):
            continue

        def call(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        call.__name__ = name
        call._serialized_shim = True  # type: ignore[attr-defined]
        patch(owner, name, call)


def moto_version() -> str:
    return str(moto.__version__)


def check_moto_version(expected: str = PINNED_MOTO_VERSION) -> None:
    """The shims patch moto internals: refuse to start on any other version than the pinned one."""
    found = moto_version()
    if found != expected:
        raise ShimError(
            f"moto {found} is installed but the emulator shims are written for moto=={expected}; "
            f"install the pinned version (pip install 'moto[server]=={expected}')"
        )
