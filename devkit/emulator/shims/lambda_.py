"""Lambda: function logging configuration and event-source mapping lookups by function name."""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaBackend, LambdaFunction

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
