"""Lambda REQUEST authorizers, run the way API Gateway runs them, for the emulated REST API.

moto stores ``CreateAuthorizer`` but runs nothing, and LocalStack's free edition does not execute
Lambda authorizers on REST APIs; :class:`devkit.emulator.apigw.EmulatedRestApi` calls
:meth:`AuthorizerRunner.authorize` for every method whose ``authorizationType`` is ``CUSTOM``:

* identity sources (``method.request.header.X``, ``method.request.querystring.X``): any missing or
  empty value is 401 ``UNAUTHORIZED`` without invoking the function, as on AWS;
* the decision is cached per authorizer and identity-source values for
  ``authorizerResultTtlInSeconds`` (0: never cached); the cache is keyed by those values only, so a
  cached decision answers every route, exactly what AWS does;
* the function (invoked through the emulator's Lambda, only if its resource policy lets
  ``apigateway.amazonaws.com`` invoke it from ``<api arn>/authorizers/<id>``) raising
  ``Unauthorized`` is 401; any other error or a malformed answer is 500 ``AUTHORIZER_FAILURE``;
* the returned policy must Allow ``execute-api:Invoke`` on the method ARN (wildcards as IAM matches
  them) and not Deny it, else 403 ``ACCESS_DENIED``;
* ``principalId`` and the ``context`` map reach the integration as ``requestContext.authorizer``.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

# (response type, message) the pipeline turns into a gateway response.
Refusal = Callable[[str, str], Exception]

_SOURCE_PREFIXES = {"method.request.header.": "header", "method.request.querystring.": "query"}


class AuthorizerRunner:
    """Runs the API's Lambda REQUEST authorizers with API Gateway's caching and answers."""

    def __init__(
        self,
        apigateway: Any,
        lambda_: Any,
        rest_api_id: str,
        *,
        refuse: Refusal,
        may_invoke: Callable[[str, str], bool],
        check_permissions: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.apigateway = apigateway
        self.lambda_ = lambda_
        self.rest_api_id = rest_api_id
        self._refuse = refuse
        self._may_invoke = may_invoke
        self._check_permissions = check_permissions
        self._clock = clock
        self._authorizers: dict[str, dict[str, Any]] | None = None
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self.invocations = 0

    def refresh(self) -> None:
        self._authorizers = None
        self._cache.clear()

    def _authorizer(self, authorizer_id: str) -> dict[str, Any]:
        if self._authorizers is None:
            items = self.apigateway.get_authorizers(restApiId=self.rest_api_id).get("items", [])
            self._authorizers = {a["id"]: a for a in items}
        found = self._authorizers.get(authorizer_id)
        if found is None:
            raise self._refuse("API_CONFIGURATION_ERROR", f"authorizer {authorizer_id} not found")
        return found

    @staticmethod
    def identity_values(
        authorizer: Mapping[str, Any], headers: Mapping[str, str], query: Mapping[str, str]
    ) -> tuple[str, ...] | None:
        """The identity-source values in order; None when one is missing or empty (401)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        values = []
        for raw in str(authorizer.get("identitySource") or "").split(","):
            source = raw.strip()
            if not source:
                continue
            for prefix, where in _SOURCE_PREFIXES.items():
                if source.startswith(prefix):
                    name = source[len(prefix) :]
                    value = lowered.get(name.lower()) if where == "header" else query.get(name)
                    break
            else:
                value = None
            if not value:
                return None
            values.append(value)
        return tuple(values)

    def authorize(
        self,
        spec: Mapping[str, Any],
        *,
        region: str,
        stage_path: str,
        event: dict[str, Any],
        headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> dict[str, Any] | None:
        """The ``requestContext.authorizer`` map for a CUSTOM method (None for any other); raises
        the pipeline's refusal for 401/403/500. ``stage_path``: ``<stage>/<METHOD>/<path>``."""
        if spec.get("authorizationType") != "CUSTOM":
            return None
        authorizer = self._authorizer(str(spec.get("authorizerId") or ""))
        account = (
            function_arn_of(authorizer).split(":")[4] if function_arn_of(authorizer).count(":") >= 4 else ""
        )
        api_arn = f"arn:aws:execute-api:{region}:{account}:{self.rest_api_id}"
        method_arn = f"{api_arn}/{stage_path}"
        values = self.identity_values(authorizer, headers, query)
        if values is None:
            raise self._refuse("UNAUTHORIZED", "Unauthorized")
        ttl = int(authorizer.get("authorizerResultTtlInSeconds") or 0)
        key = (str(authorizer["id"]), values)
        cached = self._cache.get(key)
        if ttl and cached and self._clock() - cached[0] < ttl:
            answer = cached[1]
        else:
            answer = self._invoke(authorizer, api_arn, {**event, "type": "REQUEST", "methodArn": method_arn})
            if ttl:
                self._cache[key] = (self._clock(), answer)
        if not allows(answer.get("policyDocument"), method_arn):
            raise self._refuse("ACCESS_DENIED", "User is not authorized to access this resource")
        context = {str(k): v for k, v in (answer.get("context") or {}).items()}
        return {**context, "principalId": answer.get("principalId")}

    def _invoke(self, authorizer: Mapping[str, Any], api_arn: str, event: dict[str, Any]) -> dict[str, Any]:
        function_arn = function_arn_of(authorizer)
        source_arn = f"{api_arn}/authorizers/{authorizer['id']}"
        if self._check_permissions and not self._may_invoke(function_arn, source_arn):
            raise self._refuse("AUTHORIZER_CONFIGURATION_ERROR", "Authorizer configuration error")
        self.invocations += 1
        try:
            result = self.lambda_.invoke(FunctionName=function_arn, Payload=json.dumps(event).encode())
        except ClientError as exc:
            raise self._refuse("AUTHORIZER_FAILURE", str(exc)) from exc
        payload = result["Payload"].read()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if result.get("FunctionError"):
            message = answer.get("errorMessage") if isinstance(answer, dict) else None
            if message == "Unauthorized":
                raise self._refuse("UNAUTHORIZED", "Unauthorized")
            raise self._refuse("AUTHORIZER_FAILURE", "Authorizer error")
        if not isinstance(answer, dict) or "policyDocument" not in answer or "principalId" not in answer:
            raise self._refuse("AUTHORIZER_FAILURE", "Authorizer error")
        return answer


def request_event(
    *,
    resource: str,
    path: str,
    method: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    path_parameters: Mapping[str, str],
    stage_variables: Mapping[str, str] | None,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The REQUEST authorizer event (``type`` and ``methodArn`` are added by the runner)."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "queryStringParameters": dict(query) or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": dict(stage_variables or {}) or None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": context.get("stage"),
            "requestId": context.get("requestId"),
            "apiId": context.get("apiId"),
            "identity": {"sourceIp": (context.get("identity") or {}).get("sourceIp")},
        },
    }


def function_arn_of(authorizer: Mapping[str, Any]) -> str:
    uri = str(authorizer.get("authorizerUri") or "")
    return uri.split("/functions/", 1)[-1].removesuffix("/invocations")


def allows(policy: Any, method_arn: str) -> bool:
    """IAM evaluation of an authorizer policy for ``execute-api:Invoke`` on ``method_arn``."""
    if not isinstance(policy, Mapping):
        return False
    statements = policy.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping):
            continue
        actions = statement.get("Action") or []
        actions = actions if isinstance(actions, list) else [actions]
        resources = statement.get("Resource") or []
        resources = resources if isinstance(resources, list) else [resources]
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", str(a)) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(method_arn, str(r)) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
