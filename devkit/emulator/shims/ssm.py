"""SSM: parameter calls serialized, so parallel applies do not race moto's parameter dict."""

from __future__ import annotations

import threading
from typing import Any

from moto.ssm.models import SimpleSystemManagerBackend

from devkit.emulator.shims._base import patch, require

_ssm_lock = threading.RLock()


def shim_ssm_parameters_thread_safe() -> None:
    """moto 5.2.5's SSM backend keeps parameters in a plain dict that DescribeParameters and
    GetParametersByPath iterate while PutParameter/DeleteParameter of a concurrent request add or remove
    entries: under Terraform's parallel apply/destroy (many ``aws_ssm_parameter``) a request fails with
    HTTP 500 "RuntimeError: dictionary changed size during iteration". Serialize the calls that mutate or
    iterate the parameter dict (each is in-memory and fast)."""

    def serialized(name: str) -> None:
        original = require(SimpleSystemManagerBackend, name)

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _ssm_lock:
                return original(self, *args, **kwargs)

        call.__name__ = name
        patch(SimpleSystemManagerBackend, name, call)

    for name in (
        "put_parameter",
        "delete_parameter",
        "delete_parameters",
        "describe_parameters",
        "get_parameters_by_path",
    ):
        serialized(name)
