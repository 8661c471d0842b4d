"""SSM: parameter calls serialized, so parallel applies do not race moto's parameter dict."""

from __future__ import annotations

import threading

from moto.ssm.models import SimpleSystemManagerBackend

from devkit.emulator.shims._base import serialize

_ssm_lock = threading.RLock()


def shim_ssm_parameters_thread_safe() -> None:
    """moto 5.2.5's SSM backend keeps parameters in a plain dict that DescribeParameters and
    GetParametersByPath iterate while PutParameter/DeleteParameter of a concurrent request add or remove
    entries: under Terraform's parallel apply/destroy (many ``aws_ssm_parameter``) a request fails with
    HTTP 500 "RuntimeError: dictionary changed size during iteration". Serialize the calls that mutate or
    iterate the parameter dict (each is in-memory and fast)."""
    serialize(
        SimpleSystemManagerBackend,
        (
            "put_parameter",
            "delete_parameter",
            "delete_parameters",
            "describe_parameters",
            "get_parameters_by_path",
        ),
        _ssm_lock,
    )
