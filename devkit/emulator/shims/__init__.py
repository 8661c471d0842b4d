"""Compatibility shims that let the Terraform AWS provider 5.100 apply the platform to moto 5.2.5.

The shims were measured with the Terraform AWS provider 5.100 against moto 5.2.5 in server mode; the
apply test (``tests/apply``) proves them, and ``tests/tooling/test_shims.py`` exercises each one.
Each shim is one small function whose docstring names the exact moto behaviour it works around.
They patch moto classes in-process and must run before the server handles its first request.

Every patch goes through :func:`require`: if moto changes (a different version, a renamed attribute),
start-up fails with a clear :class:`ShimError` instead of a shim silently doing nothing. Shims only
touch test emulation; nothing here is production code.

* :data:`SHIMS` (:func:`install_all`) — what the provider meets while it applies, by service:
  :mod:`.sfn`, :mod:`.sqs`, :mod:`.ec2`, :mod:`.idempotency` (``ClientToken``), :mod:`.lambda_`,
  :mod:`.ssm`.
* :data:`RUNTIME_SHIMS` (:func:`install_runtime`, :mod:`.runtime`) — what the deployed code meets at
  run time (Step Functions JSONPath, S3 bucket-policy conditions, DescribeAlarms filters, DynamoDB
  restore overrides) and :mod:`.dynamodb` (each item operation atomic: a refused transaction's
  roll-back no longer undoes other requests' writes).

The X-Ray control plane moto lacks is not a shim but an emulation of a missing service:
:mod:`devkit.emulator.xray_fake`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from devkit.emulator.shims._base import (
    PATCHED,
    PINNED_MOTO_VERSION,
    ShimError,
    absent,
    check_moto_version,
    patch,
    require,
)
from devkit.emulator.shims.dynamodb import shim_dynamodb_atomic_operations
from devkit.emulator.shims.ec2 import (
    shim_ec2_gateway_endpoint_delete_without_its_route,
    shim_ec2_security_group_rule_description,
)
from devkit.emulator.shims.idempotency import shim_client_token_idempotency
from devkit.emulator.shims.lambda_ import (
    shim_lambda_event_source_mappings_by_name,
    shim_lambda_logging_config,
    shim_lambda_permission_statement_ids,
)
from devkit.emulator.shims.runtime import (
    shim_cloudwatch_describe_alarms_filters,
    shim_dynamodb_restore_overrides,
    shim_s3_bucket_policy_conditions,
    shim_sfn_definite_jsonpath,
)
from devkit.emulator.shims.sfn import (
    shim_sfn_list_state_machine_versions,
    shim_sfn_validate_state_machine_definition,
)
from devkit.emulator.shims.sqs import (
    shim_sqs_compact_redrive_policy,
    shim_sqs_keep_policy_on_set_attributes,
    shim_sqs_redrive_allow_policy,
)
from devkit.emulator.shims.ssm import shim_ssm_parameters_thread_safe

__all__ = [
    "PATCHED",
    "PINNED_MOTO_VERSION",
    "RUNTIME_SHIMS",
    "SHIMS",
    "ShimError",
    "absent",
    "check_moto_version",
    "install_all",
    "install_runtime",
    "patch",
    "require",
]

SHIMS: tuple[Callable[[], None], ...] = (
    shim_sfn_validate_state_machine_definition,
    shim_sfn_list_state_machine_versions,
    shim_sqs_redrive_allow_policy,
    # Wraps the property shim_sqs_redrive_allow_policy installs: must come after it.
    shim_sqs_compact_redrive_policy,
    shim_sqs_keep_policy_on_set_attributes,
    shim_ec2_security_group_rule_description,
    shim_ec2_gateway_endpoint_delete_without_its_route,
    shim_client_token_idempotency,
    shim_lambda_logging_config,
    shim_lambda_event_source_mappings_by_name,
    shim_lambda_permission_statement_ids,
    shim_ssm_parameters_thread_safe,
)

# Each run-time shim is idempotent (it marks what it installed), so install_runtime may run again.
RUNTIME_SHIMS: tuple[Callable[[], None], ...] = (
    shim_sfn_definite_jsonpath,
    shim_s3_bucket_policy_conditions,
    shim_cloudwatch_describe_alarms_filters,
    shim_dynamodb_restore_overrides,
    shim_dynamodb_atomic_operations,
)

_install_lock = threading.Lock()
_installed = False


def install_all() -> list[str]:
    """Check the moto version and install every shim of :data:`SHIMS` once per process; returns their
    names."""
    global _installed  # noqa: PLW0603 - process-wide patch state, guarded by a lock
    with _install_lock:
        if not _installed:
            check_moto_version()
            for shim in SHIMS:
                shim()
            _installed = True
    return [shim.__name__ for shim in SHIMS]


def install_runtime() -> list[str]:
    """Install the run-time shims of :data:`RUNTIME_SHIMS` (idempotent); returns their names."""
    for shim in RUNTIME_SHIMS:
        shim()
    return [shim.__name__ for shim in RUNTIME_SHIMS]
