"""API Gateway's REST API request pipeline, emulated over what the embedded moto server reports.

moto's server mode cannot serve a deployed REST API (test-invoke, ``_user_request_`` and execute-api
hosts all fail there), so for ``E2E_BACKEND=moto`` :class:`EmulatedRestApi` plays API Gateway from the
configuration the emulator reports: resources and methods, ``apiKeyRequired`` against keys that are
enabled and attached to a usage plan bound to the stage, request validators with the JSON-schema
models (draft-04, API Gateway's error strings), Lambda proxy integrations (invoked through the
emulator's Lambda Invoke, so the deployed zip runs), MOCK integrations with their integration
responses (CORS preflights), the API's gateway responses (status, headers, simple-substitution
templates) and the stage's access log format. Callers use :class:`devkit.emulator.apigw_client.ApiClient`,
which picks this or LocalStack's real HTTP gateway.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import jsonschema
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from devkit.emulator.apigw_authorizer import AuthorizerRunner, request_event
from devkit.emulator.endpoints import emulator_clients

# API Gateway refuses payloads above 10 MB and gives up on integrations after 29 s by default.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000

# Response type → (default status, default message), as API Gateway documents them.
GATEWAY_DEFAULTS: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "ACCESS_DENIED": (403, "Forbidden"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
    "INTEGRATION_FAILURE": (504, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "THROTTLED": (429, "Too Many Requests"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded"),
}
ERROR_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "INVALID_API_KEY": "ForbiddenException",
    "ACCESS_DENIED": "AccessDeniedException",
    "UNAUTHORIZED": "UnauthorizedException",
    "AUTHORIZER_FAILURE": "AuthorizerFailureException",
    "AUTHORIZER_CONFIGURATION_ERROR": "AuthorizerConfigurationException",
    "BAD_REQUEST_BODY": "BadRequestException",
    "BAD_REQUEST_PARAMETERS": "BadRequestException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "UNSUPPORTED_MEDIA_TYPE": "UnsupportedMediaTypeException",
    "API_CONFIGURATION_ERROR": "InternalServerErrorException",
    "INTEGRATION_FAILURE": "InternalServerErrorException",
    "INTEGRATION_TIMEOUT": "InternalServerErrorException",
    "DEFAULT_5XX": "InternalServerErrorException",
}
_LAMBDA_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<arn>.+)/invocations$")
_TEMPLATE_VAR = re.compile(r"\$(?:\{)?(context|stageVariables)((?:\.[A-Za-z0-9_-]+)+)\}?")


@dataclass(frozen=True)
class Response:
    """What the gateway answered: status, headers and the body as text (either backend)."""

    status: int
    headers: Mapping[str, str]
    body: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class GatewayError(Exception):
    """API Gateway answers the request itself with a gateway response of ``response_type``."""

    def __init__(self, response_type: str, message: str | None = None, validation: str = "", status: int = 0):
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message or GATEWAY_DEFAULTS.get(response_type, (500, "Internal server error"))[1]
        self.validation = validation
        self.status = status


@dataclass
class Route:
    resource_id: str
    path: str
    methods: dict[str, dict[str, Any]]
    segments: list[str] = field(default_factory=list)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index >= len(parts):
                    return None
                params[segment[1:-2]] = "/".join(parts[index:])
                return params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = urllib.parse.unquote(parts[index])
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(self.segments) else None

    @property
    def literal_score(self) -> tuple[int, int]:
        # API Gateway prefers literal path parts over variables, and variables over greedy ones.
        literal = sum(1 for s in self.segments if not s.startswith("{"))
        return (literal, -sum(1 for s in self.segments if "+" in s))


@dataclass
class ApiDefinition:
    api_id: str
    name: str
    stage: dict[str, Any]
    routes: list[Route]
    models: dict[str, Any]
    validators: dict[str, dict[str, Any]]
    gateway_responses: dict[str, dict[str, Any]]


def validation_errors(schema: Any, document: Any) -> list[str]:
    """All draft-04 violations, worded like API Gateway's (json-schema-validator) messages."""
    validator = jsonschema.Draft4Validator(schema)
    messages = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        messages.append(_api_gateway_message(error))
    return messages


def _quote(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _api_gateway_message(error: Any) -> str:  # noqa: PLR0911 - one wording per keyword
    instance, keyword, value = error.instance, error.validator, error.validator_value
    if keyword == "required":
        missing = sorted(p for p in value if isinstance(instance, dict) and p not in instance)
        return f"object has missing required properties ({_quote(missing)})"
    if keyword == "additionalProperties":
        declared = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in declared) if isinstance(instance, dict) else []
        return f"object instance has properties which are not allowed by the schema: {_quote(extra)}"
    if keyword == "type":
        allowed = value if isinstance(value, list) else [value]
        return (
            f"instance type ({_json_type(instance)}) does not match any allowed primitive type "
            f"(allowed: {_quote(sorted(allowed))})"
        )
    if keyword == "pattern":
        return f"ECMA 262 regex {_quote(value)} does not match input string {_quote(instance)}"
    if keyword == "enum":
        return f"instance value ({_quote(instance)}) not found in enum (possible values: {_quote(value)})"
    if keyword in ("minLength", "maxLength"):
        size = "short" if keyword == "minLength" else "long"
        bound = "minimum" if keyword == "minLength" else "maximum"
        return f"string {_quote(instance)} is too {size} (length: {len(instance)}, required {bound}: {value})"
    if keyword == "maxProperties":
        return f"object has too many properties (found {len(instance)}, maximum: {value})"
    if keyword in ("minimum", "maximum"):
        relation = "lower than" if keyword == "minimum" else "greater than"
        return (
            f"numeric instance is {relation} the required {keyword} ({keyword}: {value}, found: {instance})"
        )
    return str(error.message)


def render_template(template: str, context: Mapping[str, Any], stage_variables: Mapping[str, str]) -> str:
    """Gateway-response templates are simple ``$context``/``$stageVariables`` substitution, not VTL."""

    def substitute(match: re.Match[str]) -> str:
        root: Any = context if match.group(1) == "context" else stage_variables
        for part in match.group(2).strip(".").split("."):
            root = root.get(part) if isinstance(root, Mapping) else None
        return "" if root is None else str(root)

    return _TEMPLATE_VAR.sub(substitute, template)


def _static_parameter(value: str, request_headers: Mapping[str, str]) -> str | None:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if value.startswith("method.request.header."):
        wanted = value.split(".", 3)[3].lower()
        return next((v for k, v in request_headers.items() if k.lower() == wanted), None)
    return None


class EmulatedRestApi:
    """API Gateway's request pipeline over the configuration moto reports (see module docstring)."""

    def __init__(
        self,
        rest_api_id: str,
        stage: str,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        session: boto3.session.Session | None = None,
        source_ip: str = "127.0.0.1",
        check_lambda_permissions: bool = True,
        write_access_logs: bool = True,
    ) -> None:
        config = Config(retries={"max_attempts": 1}, read_timeout=DEFAULT_INTEGRATION_TIMEOUT_MS / 1000 + 5)
        self.apigateway, self.lambda_, self.logs = emulator_clients(
            endpoint_url, "apigateway", "lambda", "logs", region=region, config=config, session=session
        )
        self.rest_api_id = rest_api_id
        self.stage_name = stage
        self.region = region
        self.source_ip = source_ip
        self.check_lambda_permissions = check_lambda_permissions
        self.write_access_logs = write_access_logs
        self._definition: ApiDefinition | None = None
        self._access_stream: str | None = None
        self.authorizers = AuthorizerRunner(
            self.apigateway,
            self.lambda_,
            rest_api_id,
            refuse=GatewayError,
            may_invoke=self._may_invoke,
            check_permissions=check_lambda_permissions,
        )

    # -- configuration ------------------------------------------------------------------------------------
    @property
    def definition(self) -> ApiDefinition:
        if self._definition is None:
            self._definition = self.load()
        return self._definition

    def refresh(self) -> None:
        self._definition = None
        self.authorizers.refresh()

    def load(self) -> ApiDefinition:
        client: Any = self.apigateway
        api = client.get_rest_api(restApiId=self.rest_api_id)
        stage = client.get_stage(restApiId=self.rest_api_id, stageName=self.stage_name)
        routes = []
        for page in client.get_paginator("get_resources").paginate(
            restApiId=self.rest_api_id, embed=["methods"]
        ):
            for resource in page["items"]:
                methods = {}
                for http_method in resource.get("resourceMethods", {}) or {}:
                    method = client.get_method(
                        restApiId=self.rest_api_id, resourceId=resource["id"], httpMethod=http_method
                    )
                    method.pop("ResponseMetadata", None)
                    methods[http_method] = method
                path = resource["path"]
                routes.append(Route(resource["id"], path, methods, [p for p in path.split("/") if p]))
        models = {}
        for page in client.get_paginator("get_models").paginate(restApiId=self.rest_api_id):
            for model in page["items"]:
                schema = model.get("schema")
                models[model["name"]] = json.loads(schema) if isinstance(schema, str) and schema else schema
        validators = {
            v["id"]: v for v in client.get_request_validators(restApiId=self.rest_api_id).get("items", [])
        }
        gateway_responses = {
            g["responseType"]: g
            for g in client.get_gateway_responses(restApiId=self.rest_api_id).get("items", [])
        }
        return ApiDefinition(
            api_id=self.rest_api_id,
            name=api.get("name", ""),
            stage=stage,
            routes=routes,
            models=models,
            validators=validators,
            gateway_responses=gateway_responses,
        )

    # -- request pipeline -----------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None, query: Mapping[str, str]
    ) -> Response:
        started = time.time()
        request_id = str(uuid.uuid4())
        path = "/" + path.lstrip("/")
        context: dict[str, Any] = {
            "requestId": request_id,
            "extendedRequestId": base64.b64encode(secrets.token_bytes(6)).decode().rstrip("="),
            "httpMethod": method,
            "path": f"/{self.stage_name}{path}",
            "resourcePath": None,
            "resourceId": None,
            "stage": self.stage_name,
            "apiId": self.rest_api_id,
            "protocol": "HTTP/1.1",
            "requestTime": datetime.fromtimestamp(started, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(started * 1000),
            "domainName": f"{self.rest_api_id}.execute-api.{self.region}.amazonaws.com",
            "domainPrefix": self.rest_api_id,
            "xrayTraceId": f"1-{int(started):08x}-{uuid.uuid4().hex[:24]}",
            "identity": {
                "sourceIp": self.source_ip,
                "userAgent": next((v for k, v in headers.items() if k.lower() == "user-agent"), None),
                "apiKey": None,
                "apiKeyId": None,
                "caller": None,
                "user": None,
            },
            "error": {},
            "integration": {},
        }
        try:
            response = self._pipeline(method, path, headers, body, query, context)
        except GatewayError as err:
            response = self._gateway_response(err, context, headers)
        context["status"] = response.status
        context["responseLength"] = len(response.body.encode())
        context["responseLatency"] = int((time.time() - started) * 1000)
        self._access_log(context)
        return response

    def _pipeline(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        query: Mapping[str, str],
        context: dict[str, Any],
    ) -> Response:
        definition = self.definition
        if body is not None and len(body) > MAX_PAYLOAD_BYTES:
            raise GatewayError("REQUEST_TOO_LARGE")
        route, path_params = self._route(path)
        http_method = method if method in route.methods else "ANY" if "ANY" in route.methods else None
        if http_method is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
        spec = route.methods[http_method]
        context["resourcePath"] = route.path
        context["resourceId"] = route.resource_id
        # Lambda authorizers run before the API key and usage-plan check, as on AWS.
        context["authorizer"] = self.authorizers.authorize(
            spec,
            region=self.region,
            stage_path=f"{self.stage_name}/{http_method}{path}",
            event=request_event(
                resource=route.path,
                path=path,
                method=method,
                headers=headers,
                query=query,
                path_parameters=path_params,
                stage_variables=definition.stage.get("variables"),
                context=context,
            ),
            headers=headers,
            query=query,
        )

        if spec.get("apiKeyRequired"):
            key = next((v for k, v in headers.items() if k.lower() == "x-api-key"), None)
            key_id = self._authorised_key_id(key)
            context["identity"]["apiKey"] = key
            context["identity"]["apiKeyId"] = key_id

        validator = definition.validators.get(spec.get("requestValidatorId") or "")
        if validator and validator.get("validateRequestParameters"):
            self._validate_parameters(spec, path_params, headers, query)
        if validator and validator.get("validateRequestBody"):
            self._validate_body(spec, headers, body)

        integration = spec.get("methodIntegration") or {}
        kind = integration.get("type")
        if kind == "MOCK":
            return self._mock(integration, headers, context)
        if kind == "AWS_PROXY":
            return self._lambda_proxy(
                integration, route, http_method, path, path_params, headers, body, query, context
            )
        raise GatewayError("API_CONFIGURATION_ERROR", f"integration type {kind!r} is not emulated")

    def _route(self, path: str) -> tuple[Route, dict[str, str]]:
        parts = [p for p in path.split("/") if p]
        candidates = []
        for route in self.definition.routes:
            params = route.match(parts)
            if params is not None:
                candidates.append((route.literal_score, route, params))
        if not candidates:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
        _, route, params = max(candidates, key=lambda c: c[0])
        return route, params

    def _authorised_key_id(self, value: str | None) -> str:
        if not value:
            raise GatewayError("INVALID_API_KEY")
        key_id = None
        for page in self.apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page["items"]:
                if key.get("value") == value and key.get("enabled", False):
                    key_id = key["id"]
        if key_id is None:
            raise GatewayError("INVALID_API_KEY")
        for page in self.apigateway.get_paginator("get_usage_plans").paginate():
            for plan in page["items"]:
                bound = any(
                    s.get("apiId") == self.rest_api_id and s.get("stage") == self.stage_name
                    for s in plan.get("apiStages", [])
                )
                if not bound:
                    continue
                keys = self.apigateway.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", [])
                if any(k.get("id") == key_id for k in keys):
                    return key_id
        raise GatewayError("INVALID_API_KEY")

    def _validate_parameters(
        self,
        spec: Mapping[str, Any],
        path_params: Mapping[str, str],
        headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> None:
        missing = []
        lowered = {k.lower() for k in headers}
        for name, required in (spec.get("requestParameters") or {}).items():
            if not required:
                continue
            _, _, location, param = name.split(".", 3)
            present = (
                (location == "path" and bool(path_params.get(param)))
                or (location == "querystring" and param in query)
                or (location == "header" and param.lower() in lowered)
            )
            if not present:
                missing.append(param)
        if missing:
            text = f"Missing required request parameters: [{', '.join(missing)}]"
            raise GatewayError("BAD_REQUEST_PARAMETERS", text, validation=text)

    def _validate_body(self, spec: Mapping[str, Any], headers: Mapping[str, str], body: bytes | None) -> None:
        models = spec.get("requestModels") or {}
        if not models:
            return
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"), "application/json"
        )
        media = content_type.split(";", 1)[0].strip().lower()
        model_name = models.get(media) or models.get("$default")
        if model_name is None:
            return
        schema = self.definition.models.get(model_name)
        if schema is None:
            raise GatewayError("API_CONFIGURATION_ERROR", f"model {model_name} not found")
        try:
            document = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise GatewayError("BAD_REQUEST_BODY", validation=f"[Unable to parse JSON: {exc}]") from exc
        if document is None and not body:
            raise GatewayError("BAD_REQUEST_BODY", validation="[Request body is empty]")
        errors = validation_errors(schema, document)
        if errors:
            raise GatewayError("BAD_REQUEST_BODY", validation=f"[{', '.join(errors)}]")

    def _mock(
        self, integration: Mapping[str, Any], headers: Mapping[str, str], context: dict[str, Any]
    ) -> Response:
        template = (integration.get("requestTemplates") or {}).get(
            "application/json"
        ) or '{"statusCode": 200}'
        try:
            status = str(json.loads(template).get("statusCode", 200))
        except (ValueError, AttributeError):
            status = "200"
        responses = integration.get("integrationResponses") or {}
        chosen = responses.get(status) or next(iter(responses.values()), None)
        if chosen is None:
            raise GatewayError("API_CONFIGURATION_ERROR", "MOCK integration has no integration response")
        out_headers = self._base_headers(context)
        for name, value in (chosen.get("responseParameters") or {}).items():
            resolved = _static_parameter(value, headers)
            if name.startswith("method.response.header.") and resolved is not None:
                out_headers[name.split(".", 3)[3]] = resolved
        body_template = (chosen.get("responseTemplates") or {}).get("application/json") or ""
        if "#" in body_template:
            # VTL directives (e.g. echoing an allowed Origin) are beyond this emulator: keep static headers.
            body_template = ""
        body = render_template(body_template, context, self.definition.stage.get("variables") or {})
        return Response(int(chosen.get("statusCode") or status), out_headers, body)

    def _lambda_proxy(
        self,
        integration: Mapping[str, Any],
        route: Route,
        http_method: str,
        path: str,
        path_params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes | None,
        query: Mapping[str, str],
        context: dict[str, Any],
    ) -> Response:
        match = _LAMBDA_URI.match(integration.get("uri") or "")
        if not match:
            raise GatewayError("API_CONFIGURATION_ERROR", f"not a Lambda proxy URI: {integration.get('uri')}")
        function_arn = match.group("arn")
        account_id = function_arn.split(":")[4]
        context["accountId"] = account_id
        api_arn = f"arn:aws:execute-api:{self.region}:{account_id}:{self.rest_api_id}"
        source_arn = f"{api_arn}/{self.stage_name}/{http_method}{path}"
        if self.check_lambda_permissions and not self._may_invoke(function_arn, source_arn):
            raise GatewayError(
                "API_CONFIGURATION_ERROR",
                "Execution failed due to configuration error: Invalid permissions on Lambda function",
            )

        event_headers = {
            **dict(headers),
            "Host": context["domainName"],
            "X-Forwarded-For": self.source_ip,
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
            "X-Amzn-Trace-Id": f"Root={context['xrayTraceId']}",
        }
        is_binary = body is not None and not _is_text(body)
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": http_method if http_method != "ANY" else context["httpMethod"],
            "headers": event_headers,
            "multiValueHeaders": {k: [v] for k, v in event_headers.items()},
            "queryStringParameters": dict(query) or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
            "pathParameters": dict(path_params) or None,
            "stageVariables": (self.definition.stage.get("variables") or None),
            "requestContext": {
                "resourceId": route.resource_id,
                "resourcePath": route.path,
                "httpMethod": context["httpMethod"],
                "extendedRequestId": context["extendedRequestId"],
                "requestTime": context["requestTime"],
                "path": context["path"],
                "accountId": account_id,
                "protocol": "HTTP/1.1",
                "stage": self.stage_name,
                "domainPrefix": context["domainPrefix"],
                "requestTimeEpoch": context["requestTimeEpoch"],
                "requestId": context["requestId"],
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": self.source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": context["identity"]["userAgent"],
                    "user": None,
                    "apiKey": context["identity"]["apiKey"],
                    "apiKeyId": context["identity"]["apiKeyId"],
                },
                "domainName": context["domainName"],
                "apiId": self.rest_api_id,
            },
            "body": None
            if body is None
            else (base64.b64encode(body).decode() if is_binary else body.decode("utf-8")),
            "isBase64Encoded": is_binary,
        }
        if context.get("authorizer") is not None:
            event["requestContext"]["authorizer"] = context["authorizer"]  # type: ignore[index]
        started = time.time()
        try:
            result = self.lambda_.invoke(FunctionName=function_arn, Payload=json.dumps(event).encode("utf-8"))
        except ReadTimeoutError as exc:
            raise GatewayError("INTEGRATION_TIMEOUT") from exc
        except ClientError as exc:
            raise GatewayError("INTEGRATION_FAILURE", str(exc)) from exc
        context["integration"] = {
            "latency": int((time.time() - started) * 1000),
            "status": result["StatusCode"],
        }
        payload = result["Payload"].read()
        if result.get("FunctionError"):
            raise GatewayError("DEFAULT_5XX", "Internal server error", status=502)
        try:
            proxy = json.loads(payload)
            status = int(proxy["statusCode"])
        except (ValueError, KeyError, TypeError) as exc:
            # A malformed proxy response is a 502 in API Gateway, never passed through.
            raise GatewayError("DEFAULT_5XX", "Internal server error", status=502) from exc
        out_headers = self._base_headers(context)
        for name, values in (proxy.get("multiValueHeaders") or {}).items():
            out_headers[name] = ",".join(str(v) for v in values)
        for name, value in (proxy.get("headers") or {}).items():
            out_headers[name] = str(value)
        text = proxy.get("body") or ""
        if proxy.get("isBase64Encoded"):
            text = base64.b64decode(text).decode("utf-8", "replace")
        return Response(status, out_headers, text if isinstance(text, str) else json.dumps(text))

    def _may_invoke(self, function_arn: str, source_arn: str) -> bool:
        try:
            policy = json.loads(self.lambda_.get_policy(FunctionName=function_arn)["Policy"])
        except ClientError:
            return False
        for statement in policy.get("Statement", []):
            principal = statement.get("Principal")
            service = principal.get("Service") if isinstance(principal, dict) else principal
            actions = statement.get("Action")
            actions = actions if isinstance(actions, list) else [actions]
            if statement.get("Effect") != "Allow" or service != "apigateway.amazonaws.com":
                continue
            if not any(a in ("lambda:InvokeFunction", "lambda:*") for a in actions):
                continue
            condition = statement.get("Condition") or {}
            pattern = (condition.get("ArnLike") or {}).get("AWS:SourceArn") or (
                condition.get("StringEquals") or {}
            ).get("AWS:SourceArn")
            if pattern is None or fnmatch.fnmatchcase(source_arn, pattern):
                return True
        return False

    # -- responses -----------------------------------------------------------------------------------------
    def _base_headers(self, context: Mapping[str, Any]) -> dict[str, str]:
        return {
            "x-amzn-RequestId": context["requestId"],
            "x-amz-apigw-id": context["extendedRequestId"],
            "X-Amzn-Trace-Id": f"Root={context['xrayTraceId']}",
        }

    def _gateway_response(
        self, err: GatewayError, context: dict[str, Any], headers: Mapping[str, str]
    ) -> Response:
        default_status = GATEWAY_DEFAULTS.get(err.response_type, (err.status or 500, ""))[0]
        status = err.status or default_status
        configured = self._definition.gateway_responses if self._definition else {}
        family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        spec = configured.get(err.response_type) or configured.get(family) or {}
        if spec.get("statusCode") and not err.status:
            status = int(spec["statusCode"])
        context["error"] = {
            "message": err.message,
            "messageString": json.dumps(err.message),
            "responseType": err.response_type,
            "validationErrorString": err.validation,
        }
        out_headers = self._base_headers(context)
        out_headers["x-amzn-ErrorType"] = ERROR_TYPES.get(err.response_type, "BadRequestException")
        out_headers["Content-Type"] = "application/json"
        for name, value in (spec.get("responseParameters") or {}).items():
            resolved = _static_parameter(value, headers)
            if name.startswith("gatewayresponse.header.") and resolved is not None:
                out_headers[name.split(".", 2)[2]] = resolved
        template = (spec.get("responseTemplates") or {}).get("application/json")
        if template is None:
            body = json.dumps({"message": err.message})
        else:
            stage_variables = (self._definition.stage.get("variables") if self._definition else None) or {}
            body = render_template(template, context, stage_variables)
        return Response(status, out_headers, body)

    def _access_log(self, context: Mapping[str, Any]) -> None:
        if not self.write_access_logs or self._definition is None:
            return
        settings = self._definition.stage.get("accessLogSettings") or {}
        destination, fmt = settings.get("destinationArn"), settings.get("format")
        if not destination or not fmt:
            return
        group = destination.split(":log-group:", 1)[-1].removesuffix(":*")
        line = render_template(fmt, context, self._definition.stage.get("variables") or {})
        try:
            if self._access_stream is None:
                self._access_stream = f"emulated-{uuid.uuid4().hex}"
                self.logs.create_log_stream(logGroupName=group, logStreamName=self._access_stream)
            self.logs.put_log_events(
                logGroupName=group,
                logStreamName=self._access_stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": line}],
            )
        except ClientError:
            # Access logging is best effort in API Gateway too: a missing group never fails a request.
            self._access_stream = None


def _is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
