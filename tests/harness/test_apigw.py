"""The API Gateway client: emulated gateway on moto, HTTP on LocalStack, and the switch between them."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devkit.emulator.apigw import render_template, validation_errors
from devkit.emulator.apigw_client import ApiClient, Response, backend_from_env, detect_backend
from devkit.emulator.apigw_http import stage_url
from tests.harness import make_zip

ECHO = {
    "handlers/__init__.py": "",
    "handlers/echo.py": """
        import json

        def handler(event, context):
            if (event.get("queryStringParameters") or {}).get("explode"):
                raise RuntimeError("boom")
            if (event.get("queryStringParameters") or {}).get("garbage"):
                return "not a proxy response"
            return {
                "statusCode": 201 if event["httpMethod"] == "POST" else 200,
                "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
                "body": json.dumps({
                    "resource": event["resource"], "path": event["path"], "method": event["httpMethod"],
                    "pathParameters": event["pathParameters"], "body": event["body"],
                    "apiKeyId": event["requestContext"]["identity"]["apiKeyId"],
                    "stage": event["requestContext"]["stage"],
                    "requestId": event["requestContext"]["requestId"],
                    "idem": (event.get("headers") or {}).get("Idempotency-Key"),
                }),
            }
    """,
}

SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["amount", "currency"],
    "properties": {
        "amount": {"type": ["number", "string"]},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "method": {"type": "string", "enum": ["card", "wallet"]},
    },
}
CORS = {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}


def _template(code: str, message: str) -> dict[str, str]:
    return {"application/json": f'{{"error":{{"code":"{code}","message":"{message}"}}}}'}


@pytest.fixture(scope="module")
def api(moto_emulator: Any, lambda_role: str) -> dict[str, Any]:
    """A small REST API built like modules/api: keys, usage plan, validator + model, MOCK OPTIONS."""
    lam, gw = moto_emulator.client("lambda"), moto_emulator.client("apigateway")
    fn = lam.create_function(
        FunctionName=f"harness-echo-{uuid.uuid4().hex[:8]}",
        Runtime="python3.12",
        Role=lambda_role,
        Handler="handlers.echo.handler",
        Code={"ZipFile": make_zip(ECHO)},
        Timeout=10,
    )
    api_id = gw.create_rest_api(name=f"harness-api-{uuid.uuid4().hex[:6]}", apiKeySource="HEADER")["id"]
    root = next(r["id"] for r in gw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    items = gw.create_resource(restApiId=api_id, parentId=root, pathPart="items")["id"]
    item = gw.create_resource(restApiId=api_id, parentId=items, pathPart="{id}")["id"]
    open_ = gw.create_resource(restApiId=api_id, parentId=root, pathPart="open")["id"]
    locked = gw.create_resource(restApiId=api_id, parentId=root, pathPart="locked")["id"]
    gw.create_model(restApiId=api_id, name="Item", contentType="application/json", schema=json.dumps(SCHEMA))
    body_validator = gw.create_request_validator(restApiId=api_id, name="body", validateRequestBody=True)[
        "id"
    ]
    params_validator = gw.create_request_validator(
        restApiId=api_id, name="params", validateRequestParameters=True
    )["id"]
    uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn['FunctionArn']}/invocations"
    routes = [
        (
            items,
            "POST",
            True,
            {"requestValidatorId": body_validator, "requestModels": {"application/json": "Item"}},
        ),
        (
            item,
            "GET",
            True,
            {"requestValidatorId": params_validator, "requestParameters": {"method.request.path.id": True}},
        ),
        (open_, "GET", False, {}),
        (locked, "GET", False, {}),
    ]
    for resource, method, key, extra in routes:
        gw.put_method(
            restApiId=api_id,
            resourceId=resource,
            httpMethod=method,
            authorizationType="NONE",
            apiKeyRequired=key,
            **extra,
        )
        gw.put_integration(
            restApiId=api_id,
            resourceId=resource,
            httpMethod=method,
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=uri,
        )
    # OPTIONS preflight on /items, MOCK with static CORS headers.
    gw.put_method(restApiId=api_id, resourceId=items, httpMethod="OPTIONS", authorizationType="NONE")
    gw.put_integration(
        restApiId=api_id,
        resourceId=items,
        httpMethod="OPTIONS",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    gw.put_method_response(
        restApiId=api_id,
        resourceId=items,
        httpMethod="OPTIONS",
        statusCode="200",
        responseParameters={
            "method.response.header.Access-Control-Allow-Origin": True,
            "method.response.header.Access-Control-Allow-Methods": True,
        },
    )
    gw.put_integration_response(
        restApiId=api_id,
        resourceId=items,
        httpMethod="OPTIONS",
        statusCode="200",
        responseParameters={
            "method.response.header.Access-Control-Allow-Origin": "'*'",
            "method.response.header.Access-Control-Allow-Methods": "'OPTIONS,POST'",
        },
        responseTemplates={"application/json": ""},
    )
    for kind, status, code, message in [
        ("INVALID_API_KEY", "403", "invalid_api_key", "Invalid or missing API key"),
        ("BAD_REQUEST_BODY", "400", "invalid_body", "$context.error.validationErrorString"),
        (
            "MISSING_AUTHENTICATION_TOKEN",
            "404",
            "route_not_found",
            "No such route: $context.httpMethod $context.path",
        ),
        ("DEFAULT_5XX", None, "internal_error", "$context.error.message"),
    ]:
        gw.put_gateway_response(
            restApiId=api_id,
            responseType=kind,
            responseParameters=CORS,
            responseTemplates=_template(code, message),
            **({"statusCode": status} if status else {}),
        )
    source = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}"
    # /locked gets no permission: API Gateway cannot invoke the function for it.
    for sid, pattern in [("items", "/*/POST/items"), ("item", "/*/GET/items/*"), ("open", "/*/GET/open")]:
        lam.add_permission(
            FunctionName=fn["FunctionName"],
            StatementId=sid,
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=source + pattern,
        )
    deployment = gw.create_deployment(restApiId=api_id)["id"]
    gw.create_stage(restApiId=api_id, stageName="prod", deploymentId=deployment)
    plan = gw.create_usage_plan(
        name=f"harness-plan-{api_id}", apiStages=[{"apiId": api_id, "stage": "prod"}]
    )["id"]
    good = gw.create_api_key(name=f"harness-good-{api_id}", enabled=True, generateDistinctId=True)
    gw.create_usage_plan_key(usagePlanId=plan, keyId=good["id"], keyType="API_KEY")
    unplanned = gw.create_api_key(name=f"harness-loose-{api_id}", enabled=True)
    disabled = gw.create_api_key(name=f"harness-off-{api_id}", enabled=False)
    gw.create_usage_plan_key(usagePlanId=plan, keyId=disabled["id"], keyType="API_KEY")
    return {
        "client": ApiClient(
            "moto", rest_api_id=api_id, stage="prod", endpoint_url=moto_emulator.endpoint_url
        ),
        "good": good,
        "unplanned": unplanned,
        "disabled": disabled,
    }


def _key(api: dict[str, Any], which: str = "good") -> dict[str, str]:
    return {"x-api-key": api[which]["value"]}


def test_proxy_event_and_response(api: dict[str, Any]) -> None:
    response = api["client"].post(
        "/items", {"amount": "1.00", "currency": "EUR"}, {**_key(api), "Idempotency-Key": "k-1"}
    )
    assert response.status == 201, response.body
    assert response.header("X-Echo") == "yes" and response.header("x-amzn-RequestId")
    echo = response.json
    assert echo["resource"] == "/items" and echo["path"] == "/items" and echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"amount": "1.00", "currency": "EUR"}
    assert echo["apiKeyId"] == api["good"]["id"] and echo["stage"] == "prod" and echo["idem"] == "k-1"
    assert echo["requestId"] == response.header("x-amzn-RequestId")


def test_path_parameters(api: dict[str, Any]) -> None:
    response = api["client"].get("/items/abc%20d", _key(api))
    assert response.status == 200
    assert response.json["resource"] == "/items/{id}" and response.json["pathParameters"] == {"id": "abc d"}


@pytest.mark.parametrize("which", [None, "unplanned", "disabled", "bogus"])
def test_api_key_enforced(api: dict[str, Any], which: str | None) -> None:
    headers = (
        {}
        if which is None
        else {"x-api-key": "nope-" + uuid.uuid4().hex}
        if which == "bogus"
        else _key(api, which)
    )
    response = api["client"].post("/items", {"amount": 1, "currency": "EUR"}, headers)
    assert response.status == 403
    assert response.json == {"error": {"code": "invalid_api_key", "message": "Invalid or missing API key"}}
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert response.header("x-amzn-ErrorType") == "ForbiddenException"


def test_routes_without_key(api: dict[str, Any]) -> None:
    assert api["client"].get("/open").status == 200


def test_body_validated_against_the_model(api: dict[str, Any]) -> None:
    response = api["client"].post("/items", {"amount": 1, "currency": "eur", "extra": 1}, _key(api))
    assert response.status == 400
    # API Gateway pastes the validation string into the template unescaped: assert on the text.
    assert '"code":"invalid_body"' in response.body
    assert 'ECMA 262 regex "^[A-Z]{3}$" does not match input string "eur"' in response.body
    assert 'object instance has properties which are not allowed by the schema: ["extra"]' in response.body
    missing = api["client"].post("/items", {"currency": "EUR"}, _key(api))
    assert missing.status == 400 and 'object has missing required properties (["amount"])' in missing.body
    broken = api["client"].request("POST", "/items", _key(api), b"{not json")
    assert broken.status == 400 and "Unable to parse JSON" in broken.body


def test_unknown_route_and_method(api: dict[str, Any]) -> None:
    for method, path in [("GET", "/nowhere"), ("DELETE", "/items")]:
        response = api["client"].request(method, path, _key(api))
        assert response.status == 404
        assert response.json["error"]["message"] == f"No such route: {method} /prod{path}"


def test_cors_preflight_from_mock_integration(api: dict[str, Any]) -> None:
    response = api["client"].request("OPTIONS", "/items", {"Origin": "https://shop.example"})
    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert response.header("Access-Control-Allow-Methods") == "OPTIONS,POST"


def test_function_errors_become_502(api: dict[str, Any]) -> None:
    for flag in ("explode", "garbage"):
        response = api["client"].request("GET", "/open", query={flag: "1"})
        assert response.status == 502
        assert response.json == {"error": {"code": "internal_error", "message": "Internal server error"}}


def test_missing_lambda_permission_is_a_configuration_error(api: dict[str, Any]) -> None:
    response = api["client"].get("/locked")
    assert response.status == 500
    assert "Invalid permissions on Lambda function" in response.json["error"]["message"]


# -- pure helpers -----


def test_validation_error_wording() -> None:
    messages = validation_errors(SCHEMA, {"amount": True, "currency": "EUR", "method": "cash"})
    assert (
        'instance type (boolean) does not match any allowed primitive type (allowed: ["number","string"])'
        in messages
    )
    assert 'instance value ("cash") not found in enum (possible values: ["card","wallet"])' in messages


def test_render_template_is_substitution_only() -> None:
    rendered = render_template(
        '{"m":"$context.error.message","p":"${context.path}","v":"$stageVariables.env","x":"$context.nope"}',
        {"error": {"message": "hi"}, "path": "/prod/x"},
        {"env": "dev"},
    )
    assert json.loads(rendered) == {"m": "hi", "p": "/prod/x", "v": "dev", "x": ""}


# -- backend switch -----


def test_backend_from_env() -> None:
    assert backend_from_env({}) == "moto"
    assert backend_from_env({"E2E_BACKEND": " LocalStack "}) == "localstack"
    with pytest.raises(ValueError, match="E2E_BACKEND='aws'"):
        backend_from_env({"E2E_BACKEND": "aws"})
    with pytest.raises(ValueError, match="unknown API backend"):
        ApiClient("aws", rest_api_id="x", stage="prod")
    with pytest.raises(ValueError, match="endpoint_url"):
        ApiClient("moto", rest_api_id="x", stage="prod")


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []  # noqa: RUF012 - shared by the handler instances of one test server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        type(self).seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        if self.path == "/_localstack/health":
            status, payload = 200, json.dumps({"services": {"apigateway": "running"}}).encode()
        else:
            status = 404 if "missing" in self.path else 202
            payload = json.dumps({"ok": status == 202}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""


@pytest.fixture
def fake_localstack() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_localstack_backend_sends_real_http(fake_localstack: str) -> None:
    client = ApiClient.from_outputs(
        {"api_id": "abc123", "api_stage_name": "prod", "region": "us-east-1"},
        endpoint_url=fake_localstack,
        backend="localstack",
    )
    response = client.post("/transactions", {"amount": "1.00"}, {"x-api-key": "k", "Idempotency-Key": "i"})
    assert isinstance(response, Response) and response.status == 202 and response.json == {"ok": True}
    sent = _Recorder.seen[-1]
    assert sent["method"] == "POST" and sent["path"] == "/restapis/abc123/prod/_user_request_/transactions"
    assert sent["headers"]["x-api-key"] == "k" and sent["headers"]["content-type"] == "application/json"
    assert json.loads(sent["body"]) == {"amount": "1.00"}
    missing = client.get("/missing/1", query={"a": "b"})
    assert (
        missing.status == 404
        and _Recorder.seen[-1]["path"] == "/restapis/abc123/prod/_user_request_/missing/1?a=b"
    )


def test_environment_selects_the_backend(monkeypatch: pytest.MonkeyPatch, fake_localstack: str) -> None:
    monkeypatch.setenv("E2E_BACKEND", "localstack")
    client = ApiClient.from_outputs({"api_id": "x1", "api_stage_name": "prod"}, endpoint_url=fake_localstack)
    assert client.backend == "localstack" and client.get("/health").status == 202
    monkeypatch.setenv("E2E_BACKEND", "moto")
    assert (
        ApiClient.from_outputs(
            {"api_id": "x1", "api_stage_name": "prod"}, endpoint_url=fake_localstack
        ).backend
        == "moto"
    )


def test_detect_backend_probes_localstack_health(fake_localstack: str, moto_emulator: Any) -> None:
    assert detect_backend(fake_localstack, {}) == "localstack"
    assert detect_backend(moto_emulator.endpoint_url, {}) == "moto"
    assert detect_backend(fake_localstack, {"E2E_BACKEND": "moto"}) == "moto"
    assert detect_backend(None, {}) == "moto"


# -- the stage over HTTP on the emulator's port (what `curl` and the README use) ---------------------------


def _http(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback URL
            return Response(resp.status, dict(resp.headers.items()), resp.read().decode())
    except urllib.error.HTTPError as err:
        return Response(err.code, dict(err.headers.items()), err.read().decode())


def test_stage_answers_http_on_the_emulator_port(api: dict[str, Any], moto_emulator: Any) -> None:
    base = stage_url(moto_emulator.endpoint_url, api["client"].rest_api_id, "prod")
    body = json.dumps({"amount": "1.00", "currency": "EUR"}).encode()
    headers = {**_key(api), "Content-Type": "application/json", "Idempotency-Key": "k-http"}
    created = _http(f"{base}/items", "POST", headers, body)
    assert created.status == 201, created.body
    assert created.json["apiKeyId"] == api["good"]["id"] and created.json["idem"] == "k-http"
    assert created.header("X-Echo") == "yes"
    item = _http(f"{base}/items/abc%20d", headers=_key(api))
    assert item.status == 200 and item.json["pathParameters"] == {"id": "abc d"}
    # The same gateway as in process: key check, validation, gateway responses, CORS preflight.
    assert _http(f"{base}/items", "POST", {"Content-Type": "application/json"}, body).status == 403
    invalid = _http(f"{base}/items", "POST", headers, b'{"amount": 1}')
    assert invalid.status == 400 and "invalid_body" in invalid.body
    assert _http(f"{base}/nowhere").status == 404
    preflight = _http(f"{base}/items", "OPTIONS", {"Origin": "https://shop.example"})
    assert preflight.status == 200 and preflight.header("Access-Control-Allow-Origin") == "*"


def test_stage_over_http_with_curl(api: dict[str, Any], moto_emulator: Any) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    base = stage_url(moto_emulator.endpoint_url, api["client"].rest_api_id, "prod")
    argv = [curl, "-sS", "-X", "POST", f"{base}/items", "-H", f"x-api-key: {api['good']['value']}"]
    argv += ["-H", "Content-Type: application/json", "-d", '{"amount": 2, "currency": "USD"}']
    done = subprocess.run(  # noqa: S603 - curl from PATH, loopback URL
        [*argv, "-w", "\n%{http_code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, status = done.stdout.rsplit("\n", 1)
    assert status == "201" and json.loads(text)["method"] == "POST"


def test_unknown_api_or_stage_is_forbidden(api: dict[str, Any], moto_emulator: Any) -> None:
    assert _http(stage_url(moto_emulator.endpoint_url, "nosuchapi", "prod") + "/items").status == 403
    base = stage_url(moto_emulator.endpoint_url, api["client"].rest_api_id, "nostage")
    assert _http(f"{base}/open").status == 403


def test_stage_over_http_serves_concurrent_requests(api: dict[str, Any], moto_emulator: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base = stage_url(moto_emulator.endpoint_url, api["client"].rest_api_id, "prod")
    headers = {**_key(api), "Content-Type": "application/json"}

    def create(n: int) -> int:
        body = json.dumps({"amount": n, "currency": "EUR"}).encode()
        return _http(f"{base}/items", "POST", {**headers, "Idempotency-Key": f"k-par-{n}"}, body).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(create, range(16))) == [201] * 16
