"""Terraform tooling for local runs: provider mirror, scratch working copies, the runner.

- :mod:`devkit.terraform.mirror`: finding a local provider mirror and the CLI config that uses it;
- :mod:`devkit.terraform.workdir`: scratch working copies of the root module with the emulator override;
- :mod:`devkit.terraform.runner`: :class:`Terraform` (tftest's wrapper with timeouts, logs, re-runs);
- :mod:`devkit.terraform.errors`: :class:`TerraformError` and the reading of ``Error:`` blocks;
- :mod:`devkit.terraform.ui`: terraform's machine-readable UI (``-json``) and apply progress;
- :mod:`devkit.terraform.plan`: reading ``terraform show -json`` plans.

``python -m devkit.terraform validate`` runs ``terraform init -backend=false`` + ``terraform validate``
on a scratch copy (used by ``make lint`` and the pre-commit hook).
"""

from __future__ import annotations

from devkit.terraform.errors import (
    TRANSIENT_ERRORS,
    TerraformError,
    error_blocks,
    failed_calls,
    is_transient,
)
from devkit.terraform.mirror import (
    AWS_PROVIDER_SOURCE,
    MIRROR_ENV,
    MIRROR_SEARCH_ROOTS,
    find_provider_mirror,
    implied_mirror_dirs,
    mirror_has_aws_provider,
    platform_dir,
    render_cli_config,
    search_for_mirror,
    terraform_env,
    write_cli_config,
)
from devkit.terraform.paths import FAILED_LOG_DIR, LOCAL_DIR, REPO_ROOT
from devkit.terraform.plan import planned_resources
from devkit.terraform.runner import DEFAULT_TIMEOUT_S, CommandResult, Terraform
from devkit.terraform.ui import ApplyProgress, parse_message, render_diagnostic
from devkit.terraform.workdir import (
    DEFAULT_PACKAGE_RELPATH,
    EMULATOR_ENDPOINT_SERVICES,
    OVERRIDE_FILENAME,
    PROVIDER_MAX_ATTEMPTS,
    declares_backend,
    module_digest,
    prepare_workdir,
    provider_aliases,
    render_override,
)

__all__ = [
    "AWS_PROVIDER_SOURCE",
    "DEFAULT_PACKAGE_RELPATH",
    "DEFAULT_TIMEOUT_S",
    "EMULATOR_ENDPOINT_SERVICES",
    "FAILED_LOG_DIR",
    "LOCAL_DIR",
    "MIRROR_ENV",
    "MIRROR_SEARCH_ROOTS",
    "OVERRIDE_FILENAME",
    "PROVIDER_MAX_ATTEMPTS",
    "REPO_ROOT",
    "TRANSIENT_ERRORS",
    "ApplyProgress",
    "CommandResult",
    "Terraform",
    "TerraformError",
    "declares_backend",
    "error_blocks",
    "failed_calls",
    "find_provider_mirror",
    "implied_mirror_dirs",
    "is_transient",
    "mirror_has_aws_provider",
    "module_digest",
    "parse_message",
    "planned_resources",
    "platform_dir",
    "prepare_workdir",
    "provider_aliases",
    "render_cli_config",
    "render_diagnostic",
    "render_override",
    "search_for_mirror",
    "terraform_env",
    "write_cli_config",
]
