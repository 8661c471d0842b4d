"""``python -m devkit.terraform validate|cli-config|mirror``.

- ``validate``: ``terraform init -backend=false`` + ``terraform validate`` on a scratch copy of the
  root module (``make lint``, the pre-commit hook);
- ``cli-config``: write the CLI config for the local provider mirror and print its path (empty
  when there is no mirror);
- ``mirror``: print the provider mirror found (empty when there is none).
"""

from __future__ import annotations

import sys
from pathlib import Path

from devkit.terraform.errors import TerraformError
from devkit.terraform.mirror import find_provider_mirror, terraform_env
from devkit.terraform.paths import LOCAL_DIR
from devkit.terraform.runner import Terraform
from devkit.terraform.workdir import prepare_workdir

USAGE = "usage: python -m devkit.terraform validate|cli-config|mirror\n"


def validate(dest: Path | None = None) -> int:
    """``terraform init -backend=false`` + ``validate`` on a scratch copy of the root module."""
    workdir = prepare_workdir(dest or LOCAL_DIR / "validate", None)
    tf = Terraform(workdir, timeout=600)
    tf.run("init", "-backend=false", "-input=false", "-no-color")
    result = tf.run("validate", "-no-color", ok_codes=(0, 1))
    sys.stdout.write(result.out)
    sys.stderr.write(result.err)
    return result.retcode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["validate"]:
            return validate()
        if args[:1] == ["cli-config"]:
            sys.stdout.write(terraform_env().get("TF_CLI_CONFIG_FILE", "") + "\n")
            return 0
        if args[:1] == ["mirror"]:
            mirror = find_provider_mirror()
            sys.stdout.write(f"{mirror or ''}\n")
            return 0
    except TerraformError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
