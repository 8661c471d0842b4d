"""Step Functions: two calls the provider makes around ``aws_sfn_state_machine`` that moto 5.2.5 lacks."""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

from devkit.emulator.shims._base import absent, patch, require


def shim_sfn_validate_state_machine_definition() -> None:
    """moto 5.2.5 has no ``ValidateStateMachineDefinition`` (answers 500 NotImplementedError).

    The provider calls it before every create/update of ``aws_sfn_state_machine``; the shim parses
    the definition as JSON and answers ``OK`` without diagnostics (moto's own CreateStateMachine does
    the rest), or ``FAIL`` with one ERROR diagnostic when the definition is not JSON.
    """

    absent(StepFunctionResponse, "validate_state_machine_definition")

    def validate_state_machine_definition(self: Any) -> ActionResult:
        definition = self._get_param("definition") or ""
        try:
            parsed = json.loads(definition)
        except ValueError as exc:
            return ActionResult(
                {
                    "result": "FAIL",
                    "diagnostics": [
                        {
                            "severity": "ERROR",
                            "code": "INVALID_JSON_DESCRIPTION",
                            "message": f"Definition is not valid JSON: {exc}",
                            "location": "/",
                        }
                    ],
                    "truncated": False,
                }
            )
        if not isinstance(parsed, dict) or "States" not in parsed or "StartAt" not in parsed:
            return ActionResult(
                {
                    "result": "FAIL",
                    "diagnostics": [
                        {
                            "severity": "ERROR",
                            "code": "SCHEMA_VALIDATION_FAILED",
                            "message": "Definition must be an object with StartAt and States",
                            "location": "/",
                        }
                    ],
                    "truncated": False,
                }
            )
        return ActionResult({"result": "OK", "diagnostics": [], "truncated": False})

    patch(StepFunctionResponse, "validate_state_machine_definition", validate_state_machine_definition)


def shim_sfn_list_state_machine_versions() -> None:
    """moto 5.2.5 has no ``ListStateMachineVersions`` (500), which the provider calls on every read
    of ``aws_sfn_state_machine`` (plan, apply, destroy). The shim lists the versions moto does keep
    (``StateMachine.versions``, filled by ``publish=true``): an empty list for unpublished machines,
    ``StateMachineDoesNotExist`` for unknown ARNs, as AWS does.
    """

    absent(StepFunctionResponse, "list_state_machine_versions")
    require(StepFunctionResponse, "stepfunction_backend")

    def list_state_machine_versions(self: Any) -> ActionResult:
        arn = self._get_param("stateMachineArn")
        machine = self.stepfunction_backend.describe_state_machine(arn)
        versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: -v.version)
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions
                ]
            }
        )

    patch(StepFunctionResponse, "list_state_machine_versions", list_state_machine_versions)
