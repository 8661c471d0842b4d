"""``ClientToken`` idempotency for the create calls that take a token (EC2, EventBridge Scheduler)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from moto.core.responses import BaseResponse
from moto.ec2.responses import EC2Response
from moto.scheduler.responses import EventBridgeSchedulerResponse

from devkit.emulator.shims._base import patch

# (response class, account, region, action, token) -> (request parameters, response) of a success.
_TOKEN_RESPONSES: dict[tuple[str, str, str, str, str], tuple[str, Any]] = {}
_token_lock = threading.Lock()


def _idempotent_call_action(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call_action(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        action = self._get_action()
        key = (type(self).__name__, str(self.current_account), str(self.region), action, str(token))
        params = json.dumps(
            {k: v for k, v in self._get_params().items() if k != "ClientToken"}, sort_keys=True, default=str
        )
        with _token_lock:
            seen = _TOKEN_RESPONSES.get(key)
            if seen is None:
                response = original(self)
                if 200 <= int(response[0]) < 300:
                    _TOKEN_RESPONSES[key] = (params, response)
                return response
        if seen[0] != params:
            return 400, {"status": 400}, _idempotency_mismatch(self, action)
        return seen[1]

    return call_action


def _idempotency_mismatch(response: Any, action: str) -> str:
    message = f"The client token of this {action} request was used before with different parameters"
    if getattr(response, "service_name", "") == "ec2":
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>IdempotentParameterMismatch</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>idempotency</RequestID></Response>"
        )
    return json.dumps({"__type": "ConflictException", "message": message})


def shim_client_token_idempotency() -> None:
    """moto 5.2.5 ignores ``ClientToken`` (its own docstrings say "not yet implemented"), so a
    create call that the AWS SDK repeats with the same token after losing the first response
    creates twice or fails: ``CreateFlowLogs`` answered ``FlowLogAlreadyExists`` and failed a CI
    apply, after the SDK for Go retried it (the SDK fills ``ClientToken`` itself and keeps it across
    its retries). AWS answers a repeated token with the first call's result, and a token reused with
    different parameters with ``IdempotentParameterMismatch``. The shim does the same for EC2 and
    EventBridge Scheduler, the services in this stack whose create calls take a token.
    """
    for owner in (EC2Response, EventBridgeSchedulerResponse):
        original = getattr(owner, "call_action", BaseResponse.call_action)
        patch(owner, "call_action", _idempotent_call_action(original))
