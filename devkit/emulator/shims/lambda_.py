"""Lambda: function logging configuration, event-source mapping lookups by function name, and
permission statement ids."""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.policy import Policy

from devkit.emulator.shims._base import patch, require


def _logging_config(
    requested: dict[str, Any] | None, function_name: str, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """AWS's effective LoggingConfig: defaults filled in the way GetFunctionConfiguration shows them."""
    config = dict(current or {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"})
    config.update({k: v for k, v in (requested or {}).items() if v is not None})
    if config.get("LogFormat") == "JSON":
        config.setdefault("ApplicationLogLevel", "INFO")
        config.setdefault("SystemLogLevel", "INFO")
    else:
        config.pop("ApplicationLogLevel", None)
        config.pop("SystemLogLevel", None)
    return config


def shim_lambda_logging_config() -> None:
    """moto 5.2.5 ignores ``LoggingConfig`` on CreateFunction/UpdateFunctionConfiguration and never
    returns it, so ``aws_lambda_function.logging_config`` (JSON log format, log group, log levels)
    shows ``+ logging_config`` on every plan. The shim stores it and returns it with the defaults
    AWS reports (Text format and ``/aws/lambda/<name>`` when not configured).
    """
    original_init = require(LambdaFunction, "__init__")
    original_get = require(LambdaFunction, "get_configuration")
    original_update = require(LambdaFunction, "update_configuration")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # moto 5.2.5 signature: (account_id, spec, region, version=1).
        spec = kwargs.get("spec", args[1] if len(args) > 1 else None) or {}
        self.shim_logging_config = _logging_config(spec.get("LoggingConfig"), self.function_name)

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original_get(self, *args, **kwargs)
        logging_config = getattr(self, "shim_logging_config", None)
        if logging_config:
            config["LoggingConfig"] = dict(logging_config)
        return config

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if config_updates.get("LoggingConfig") is not None:
            self.shim_logging_config = _logging_config(
                config_updates["LoggingConfig"],
                self.function_name,
                getattr(self, "shim_logging_config", None),
            )
        result: dict[str, Any] = original_update(self, config_updates)
        return result

    patch(LambdaFunction, "__init__", __init__)
    patch(LambdaFunction, "get_configuration", get_configuration)
    patch(LambdaFunction, "update_configuration", update_configuration)


def _function_ref(ref: str) -> str:
    """``name``, ``name:qualifier``, partial or full ARN → ``name[:qualifier]``."""
    if ":function:" in ref:
        return ref.split(":function:", 1)[1]
    return ref


def shim_lambda_event_source_mappings_by_name() -> None:
    """moto 5.2.5's ``ListEventSourceMappings(FunctionName=...)`` compares the argument verbatim with
    what CreateEventSourceMapping was given: the provider creates mappings with the function ARN, so
    listing by function name (what the console, the CLI and our tests do) returns nothing. AWS accepts
    a name, a partial ARN or an ARN either way; so does the shim.
    """
    original = require(LambdaBackend, "list_event_source_mappings")

    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> list[Any]:
        mappings = list(original(self, event_source_arn, None))
        if not function_name:
            return mappings
        wanted = _function_ref(function_name)
        return [m for m in mappings if _function_ref(str(m.function_name)) == wanted]

    patch(LambdaBackend, "list_event_source_mappings", list_event_source_mappings)


class StatementIdConflict(LambdaClientError):
    code = 409

    def __init__(self, sid: str) -> None:
        super().__init__(
            "ResourceConflictException",
            f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
            "or remove the existing statement.",
        )


_policy_lock = threading.Lock()


def shim_lambda_permission_statement_ids() -> None:
    """moto 5.2.5's ``AddPermission`` appends a statement whose ``StatementId`` the policy already
    holds, where AWS answers 409 ``ResourceConflictException``. A call sent twice (an SDK retry after
    a lost response) left two statements with one id; ``RemovePermission`` removed one, and
    ``terraform destroy`` then failed waiting for the statement to go ("waiting for Lambda Permission
    ... delete: found resource"). The shim answers a duplicate id as AWS does, and serializes the
    policy's add and remove: moto edits one list in place, and a removal iterating it while another
    removal shifts it skips a statement.
    """
    original_add = require(Policy, "add_statement")
    original_del = require(Policy, "del_statement")

    def add_statement(self: Any, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
        sid = str(json.loads(raw).get("StatementId") or "")
        with _policy_lock:
            if sid and any(statement.get("Sid") == sid for statement in self.statements):
                raise StatementIdConflict(sid)
            result: tuple[Any, str] = original_add(self, raw, qualifier)
            return result

    def del_statement(self: Any, sid: str, revision: str = "") -> None:
        with _policy_lock:
            original_del(self, sid, revision)

    patch(Policy, "add_statement", add_statement)
    patch(Policy, "del_statement", del_statement)
