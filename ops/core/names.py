"""Resource names: from explicit values, from Terraform outputs, or derived from the suffix.

Precedence is always explicit flag > Terraform outputs > naming rule of docs/interfaces.md, so an
operator can point one command at a restored table without touching anything else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from payments import names as resource
from payments.config import DEFAULT_RETENTION_DAYS

from ops.core import OpsError

DEFAULT_BY_DAY_INDEX = "by-day"
TERRAFORM_TIMEOUT_S = 120


# The output a local emulator's working copy of the stack declares (never the production root module):
# the endpoint ops then talks to, with the emulator's static test credentials.
LOCAL_ENDPOINT_OUTPUT = "aws_endpoint_url"


def normalise_outputs(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept both ``terraform output -json`` ({"k": {"value": v, ...}}) and a plain {"k": v} map."""
    values: dict[str, Any] = {}
    for key, entry in raw.items():
        if isinstance(entry, Mapping) and "value" in entry and set(entry) <= {"value", "type", "sensitive"}:
            values[key] = entry["value"]
        else:
            values[key] = entry
    return values


def load_outputs_file(path: str | Path) -> dict[str, Any]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OpsError(f"cannot read outputs file {path}: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise OpsError(f"outputs file {path} must hold a JSON object")
    return normalise_outputs(raw)


def terraform_outputs(tf_dir: str | Path, terraform: str = "terraform") -> dict[str, Any]:
    """Run ``terraform output -json`` in ``tf_dir`` (read-only: it never touches state)."""
    binary = shutil.which(terraform)
    if binary is None:
        raise OpsError(f"{terraform} not found on PATH; pass --outputs-file or explicit names instead")
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [binary, "output", "-json"],
            cwd=str(tf_dir),
            capture_output=True,
            text=True,
            timeout=TERRAFORM_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OpsError(f"terraform output failed in {tf_dir}: {exc}") from exc
    if proc.returncode != 0:
        raise OpsError(f"terraform output failed in {tf_dir}: {proc.stderr.strip()[:500]}")
    try:
        raw = json.loads(proc.stdout or "{}")
    except ValueError as exc:
        raise OpsError(f"terraform output in {tf_dir} did not return JSON: {exc}") from exc
    return normalise_outputs(raw)


class NameResolver:
    """Resolves platform resource names lazily; outputs and the account id are fetched on first use."""

    def __init__(
        self,
        outputs: Callable[[], Mapping[str, Any]] | Mapping[str, Any] | None = None,
        suffix: str | None = None,
        account_id: Callable[[], str] | None = None,
    ) -> None:
        self._outputs_source = outputs
        self._outputs: Mapping[str, Any] | None = None
        self._suffix = suffix
        self._account_id = account_id
        self._account: str | None = None

    # -- sources ---------------------------------------------------------------------------
    @property
    def outputs(self) -> Mapping[str, Any]:
        if self._outputs is None:
            source = self._outputs_source
            self._outputs = (source() if callable(source) else source) or {}
        return self._outputs

    @property
    def suffix(self) -> str | None:
        if self._suffix:
            return self._suffix
        value = self.outputs.get("environment_suffix")
        return str(value) if value else None

    def output(self, key: str) -> Any:
        """One Terraform output's value; None when it is missing or empty."""
        value = self.outputs.get(key)
        return None if value in (None, "") else value

    def _given(self, override: str | None, key: str) -> str | None:
        """The name given on the command line, else the one in the outputs; None without either."""
        if override:
            return override
        value = self.output(key)
        return str(value) if value else None

    def _named(self, key: str, rule: Callable[[str], str]) -> str | None:
        """The output ``key``, else ``rule`` applied to the suffix; None without either."""
        given = self._given(None, key)
        if given:
            return given
        suffix = self.suffix
        return rule(suffix) if suffix else None

    def account(self) -> str | None:
        """The account id: the ``account_id`` output, else asked once (STS); None if neither."""
        if self._account is None:
            value = self.output("account_id") or (self._account_id() if self._account_id else None)
            self._account = str(value) if value else None
        return self._account

    def _require_suffix(self, what: str, flag: str) -> str:
        suffix = self.suffix
        if not suffix:
            raise OpsError(
                f"cannot resolve the {what}: pass {flag}, --suffix (OPS_SUFFIX), "
                "--outputs-file (OPS_OUTPUTS_FILE) or --tf-dir (OPS_TF_DIR)"
            )
        return suffix

    # -- names -----------------------------------------------------------------------------
    def transactions_table(self, override: str | None = None) -> str:
        given = self._given(override, "transactions_table_name")
        return given or resource.transactions_table(self._require_suffix("transactions table", "--table"))

    def table(self, kind: str, override: str | None = None) -> str | None:
        """A table of the platform by kind (``payments.names.TABLES``): the flag, else the
        ``<kind>_table_name`` output, else derived from the suffix; None without any of them."""
        return override or self._named(f"{kind}_table_name", resource.TABLES[kind])

    def api_name(self) -> str | None:
        """The REST API's name, derived from the suffix; None without one."""
        suffix = self.suffix
        return resource.api_name(suffix) if suffix else None

    def by_day_index(self, override: str | None = None) -> str:
        return override or str(self.output("by_day_index_name") or DEFAULT_BY_DAY_INDEX)

    def day_shards(self) -> int | None:
        """The writer's shard count from the outputs; None without them (never a guess)."""
        value = self.output("day_shard_count")
        return int(value) if value else None

    def retention_days(self) -> int:
        """Minimum cleanup retention: the ``cleanup_retention_days`` output, else its default."""
        value = self.output("cleanup_retention_days")
        return int(value) if value else DEFAULT_RETENTION_DAYS

    def archive_bucket(self, override: str | None = None) -> str:
        given = self._given(override, "archive_bucket_name")
        if given:
            return given
        suffix = self._require_suffix("archive bucket", "--bucket")
        account = self.account()
        if not account:
            raise OpsError("cannot derive the archive bucket name without the account id; pass --bucket")
        return resource.archive_bucket(suffix, str(account))

    def dlq(self, override: str | None = None) -> str:
        """The dead-letter queue as a URL (from outputs) or a name (derived); both work with SQS."""
        given = override or self._named("dlq_url", resource.dlq)
        return given or resource.dlq(self._require_suffix("dead-letter queue", "--queue"))

    def failed_queue(self) -> str | None:
        """The failed-transactions queue as a URL (from outputs) or a name (derived); None without either."""
        return self._named("failed_queue_url", resource.failed_queue)

    def scheduler_dlq(self) -> str | None:
        """The scheduler's dead-letter queue (URL from outputs, name derived); None without either."""
        return self._named("scheduler_dlq_url", resource.scheduler_dlq)

    def state_machine_arn(self, region: str, partition: str = "aws") -> str | None:
        """The workflow's ARN from the outputs, else built from the suffix and the account id."""
        given = self._given(None, "state_machine_arn")
        if given or not self.suffix:
            return given
        account = self.account()
        if not account:
            return None
        return f"arn:{partition}:states:{region}:{account}:stateMachine:{resource.state_machine(self.suffix)}"

    def oncall_links(self) -> Mapping[str, Any]:
        links = self.output("oncall_links")
        if not isinstance(links, Mapping):
            raise OpsError(
                "the oncall_links output is missing: pass --outputs-file (OPS_OUTPUTS_FILE) or "
                "--tf-dir (OPS_TF_DIR) pointing at the applied root module"
            )
        return links
