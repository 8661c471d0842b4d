"""Scratch working copies of the root module and the emulator override they get.

Production configuration never contains anything emulator-specific. Local runs work on a scratch
working copy of the root module (:func:`prepare_workdir`) that gets an ``emulator_override.tf`` with
the test endpoints and credentials; the repository root is never written to.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from devkit.terraform.paths import REPO_ROOT
from ops.core.names import LOCAL_ENDPOINT_OUTPUT

OVERRIDE_FILENAME = "emulator_override.tf"
# Outputs only a local copy declares: the emulator endpoint, which `ops --tf-dir <copy>` connects to.
ENDPOINT_OUTPUTS_FILENAME = "emulator_outputs.tf"
ENDPOINT_OUTPUT = LOCAL_ENDPOINT_OUTPUT
DEFAULT_PACKAGE_RELPATH = Path("build/lambda/payment-app.zip")

# Provider 5.100 endpoint keys for every service the root module and its modules call.
EMULATOR_ENDPOINT_SERVICES: tuple[str, ...] = (
    "apigateway",
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ec2",
    "eventbridge",
    "iam",
    "kms",
    "lambda",
    "s3",
    "scheduler",
    "secretsmanager",
    "sfn",
    "sns",
    "sqs",
    "ssm",
    "sts",
    "wafv2",
    "xray",
)

# Attempts the AWS SDK makes per call in local runs. Not 1: the SDK for Go has a client-side race in
# which a fast 200 response arrives while its HTTP transport still finishes the request write; the
# transport then closes the connection under the response body ("https response error StatusCode: 200
# ... decomposing response: read tcp ...: use of closed network connection"). The SDK retries exactly
# this error (net.ErrClosed) when it may make a second attempt. Measured with bench/soak.py: the error
# occurs with werkzeug's and with waitress's HTTP/1.1 keep-alive server alike, so the server is not its
# cause. Under CPU load (a 2-core machine running an apply beside the test suite) one call hit the error
# on 2 attempts in a row during a soak cycle, so 4: unimplemented emulator calls (HTTP 500) still fail
# within seconds (the SDK's back-off between attempts is sub-second at first).
PROVIDER_MAX_ATTEMPTS = 4

# What the root module reads from disk besides its own *.tf: copied into every scratch working copy.
_ROOT_FILE_GLOBS: tuple[str, ...] = ("*.tf", "*.tftpl", "*.tfvars", ".terraform.lock.hcl")
_COPIED_TREES: tuple[str, ...] = ("modules", "lambda/payments/schemas")
_IGNORED_IN_COPIES = shutil.ignore_patterns(
    ".terraform", "*.tfstate", "*.tfstate.*", "*_override.tf", "__pycache__", "*.pyc"
)

_PROVIDER_ALIAS_RE = re.compile(r'provider\s+"aws"\s*\{[^}]*?alias\s*=\s*"([^"]+)"', re.S)
_BACKEND_RE = re.compile(r'^\s*backend\s+"[^"]+"', re.M)


def provider_aliases(tf_dir: Path) -> list[str]:
    """Aliases of the root's ``provider "aws"`` blocks: each needs its own override block."""
    aliases: set[str] = set()
    for tf in sorted(tf_dir.glob("*.tf")):
        if tf.name.endswith("_override.tf"):
            continue
        aliases.update(_PROVIDER_ALIAS_RE.findall(tf.read_text()))
    return sorted(aliases)


def declares_backend(tf_dir: Path) -> bool:
    return any(
        _BACKEND_RE.search(tf.read_text())
        for tf in tf_dir.glob("*.tf")
        if not tf.name.endswith("_override.tf")
    )


# The root's outputs that name the REST API and its stage; with both declared, the local copy's
# ``api_invoke_url`` is the stage's URL on the emulator (the execute-api host resolves nowhere here).
_API_ID_OUTPUT, _STAGE_OUTPUT, _INVOKE_URL_OUTPUT = "api_id", "api_stage_name", "api_invoke_url"


def _output_value(tf_dir: Path, name: str) -> str | None:
    """The ``value`` expression of the root's output ``name`` (a one-line expression), if declared."""
    pattern = re.compile(rf'^output\s+"{name}"\s*\{{(?P<body>.*?)^\}}', re.M | re.S)
    for tf in sorted(tf_dir.glob("*.tf")):
        if tf.name.endswith("_override.tf"):
            continue
        block = pattern.search(tf.read_text())
        if block:
            value = re.search(r"^\s*value\s*=\s*(?P<expr>.+)$", block.group("body"), re.M)
            return value.group("expr").strip() if value else None
    return None


def local_stage_outputs(tf_dir: Path) -> tuple[str, str] | None:
    """(api id, stage name) expressions for the local ``api_invoke_url``, when the root declares all
    three outputs."""
    api_id, stage = _output_value(tf_dir, _API_ID_OUTPUT), _output_value(tf_dir, _STAGE_OUTPUT)
    if api_id and stage and _output_value(tf_dir, _INVOKE_URL_OUTPUT):
        return api_id, stage
    return None


def render_override(
    endpoint_url: str,
    *,
    aliases: Iterable[str] = (),
    local_backend: bool = False,
    stage_outputs: tuple[str, str] | None = None,
) -> str:
    """``emulator_override.tf``: the provider pointed at a local emulator with test credentials.

    Override-file merging keeps the root's ``region`` and ``default_tags``; only the arguments set
    here replace the original ones. ``max_retries`` (:data:`PROVIDER_MAX_ATTEMPTS`) makes an
    unimplemented emulator call fail in seconds instead of retrying for minutes. With
    ``stage_outputs`` (the api id and stage expressions) ``api_invoke_url`` becomes the stage's URL on
    the emulator, ``<endpoint>/restapis/<id>/<stage>/_user_request_`` (LocalStack's shape, which the
    embedded moto emulator serves too): the URL that answers ``curl`` locally.
    """
    endpoints = "\n".join(
        f"    {svc:<{max(map(len, EMULATOR_ENDPOINT_SERVICES))}} = {json.dumps(endpoint_url)}"
        for svc in EMULATOR_ENDPOINT_SERVICES
    )

    def block(alias: str | None) -> str:
        alias_line = f"  {'alias':<27} = {json.dumps(alias)}\n" if alias else ""
        return (
            'provider "aws" {\n'
            f"{alias_line}"
            '  access_key                  = "test"\n'
            '  secret_key                  = "test"\n'
            "  skip_credentials_validation = true\n"
            "  skip_metadata_api_check     = true\n"
            "  skip_region_validation      = true\n"
            "  skip_requesting_account_id  = false\n"
            "  s3_use_path_style           = true\n"
            f"  max_retries                 = {PROVIDER_MAX_ATTEMPTS}\n"
            "\n"
            "  endpoints {\n"
            f"{endpoints}\n"
            "  }\n"
            "}\n"
        )

    header = (
        "# Generated by devkit.terraform for a local emulator run. Never commit: production configuration\n"
        "# must not contain emulator endpoints or credentials (*_override.tf is git-ignored).\n\n"
    )
    parts = [header, block(None)]
    parts += ["\n" + block(alias) for alias in aliases]
    if local_backend:
        parts.append('\nterraform {\n  backend "local" {}\n}\n')
    if stage_outputs:
        api_id, stage = stage_outputs
        url = f"{endpoint_url.rstrip('/')}/restapis/${{{api_id}}}/${{{stage}}}/_user_request_"
        parts.append(f'\noutput "{_INVOKE_URL_OUTPUT}" {{\n  value = {json.dumps(url)}\n}}\n')
    return "".join(parts)


def render_endpoint_outputs(endpoint_url: str) -> str:
    """``emulator_outputs.tf``: the ``aws_endpoint_url`` output of a local copy (``ops`` reads it, and
    then uses the emulator's test credentials)."""
    return (
        "# Generated by devkit.terraform for a local emulator run: ops --tf-dir finds the emulator here.\n\n"
        f'output "{ENDPOINT_OUTPUT}" {{\n'
        '  description = "Endpoint of the local AWS emulator this copy is applied to (test credentials)."\n'
        f"  value       = {json.dumps(endpoint_url)}\n"
        "}\n"
    )


def module_digest(*, source: Path = REPO_ROOT, package_path: Path | None = None) -> str:
    """SHA-256 over everything :func:`prepare_workdir` copies from ``source`` (names and bytes; the
    emulator override is not part of it): two working copies with the same digest plan the same."""
    digest = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for pattern in _ROOT_FILE_GLOBS:
        files += [
            (src.name, src)
            for src in source.glob(pattern)
            if src.is_file() and not src.name.endswith("_override.tf")
        ]
    for rel in _COPIED_TREES:
        tree = source / rel
        if not tree.is_dir():
            continue
        for path in tree.rglob("*"):
            parts = path.relative_to(tree).parts
            ignored = any(
                p in {".terraform", "__pycache__"}
                or p.endswith((".pyc", "_override.tf", ".tfstate"))
                or ".tfstate." in p
                for p in parts
            )
            if path.is_file() and not ignored:
                files.append(((Path(rel) / path.relative_to(tree)).as_posix(), path))
    package = package_path or (source / DEFAULT_PACKAGE_RELPATH)
    if package.is_file():
        files.append((DEFAULT_PACKAGE_RELPATH.as_posix(), package))
    for name, path in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def prepare_workdir(
    dest: Path,
    endpoint_url: str | None,
    *,
    source: Path = REPO_ROOT,
    package_path: Path | None = None,
) -> Path:
    """Build a scratch working copy of the root module in ``dest`` and return it.

    Copies the root's ``*.tf``/templates, ``modules/``, the schema files ``file()`` reads and the
    Lambda zip (when it exists) at the path the root expects; keeps ``.terraform`` and any state in
    ``dest`` so re-runs reuse them. With ``endpoint_url`` the emulator override is written; without
    it (``validate``) the copy is a plain root module.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob("*.tf"):
        stale.unlink()
    for pattern in _ROOT_FILE_GLOBS:
        for src in source.glob(pattern):
            if src.is_file() and not src.name.endswith("_override.tf"):
                shutil.copy2(src, dest / src.name)
    for rel in _COPIED_TREES:
        src_tree = source / rel
        dst_tree = dest / rel
        if dst_tree.exists():
            shutil.rmtree(dst_tree)
        if src_tree.is_dir():
            shutil.copytree(src_tree, dst_tree, ignore=_IGNORED_IN_COPIES)
    package = package_path or (source / DEFAULT_PACKAGE_RELPATH)
    if package.is_file():
        target = dest / DEFAULT_PACKAGE_RELPATH
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy rather than link: a rebuild during a run must not change what terraform hashes.
        shutil.copy2(package, target)
    if endpoint_url is not None:
        (dest / ENDPOINT_OUTPUTS_FILENAME).write_text(render_endpoint_outputs(endpoint_url))
        (dest / OVERRIDE_FILENAME).write_text(
            render_override(
                endpoint_url,
                aliases=provider_aliases(dest),
                local_backend=declares_backend(dest),
                stage_outputs=local_stage_outputs(dest),
            )
        )
    return dest
