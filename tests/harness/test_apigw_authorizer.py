"""The emulated API Gateway runs Lambda REQUEST authorizers like AWS: identity source, TTL cache,
401 for missing credentials, 403 for a Deny, the context passed to the integration."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from devkit.emulator.apigw_authorizer import allows
from devkit.emulator.apigw_client import ApiClient
from tests.harness import make_zip

FUNCTIONS = {
    "handlers/__init__.py": "",
    "handlers/echo.py": """
        import json

        def handler(event, context):
            authorizer = event["requestContext"].get("authorizer")
            return {"statusCode": 200, "headers": {}, "body": json.dumps(authorizer)}
    """,
    "handlers/auth.py": """
        def handler(event, context):
            token = event["headers"].get("Authorization", "")
            if token == "bad":
                raise Exception("Unauthorized")
            if token == "crash":
                raise RuntimeError("boom")
            effect = "Allow" if token.startswith("allow") else "Deny"
            arn = event["methodArn"].split("/")
            return {
                "principalId": "p-" + token,
                "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": effect, "Resource": "/".join(arn[:2]) + "/*"}
                ]},
                "context": {"client_id": "p-" + token, "merchants": "m1 m2"},
            }
    """,
}


@pytest.fixture(scope="module")
def api(moto_emulator: Any, lambda_role: str) -> dict[str, Any]:
    lam, gw = moto_emulator.client("lambda"), moto_emulator.client("apigateway")
    zip_file = make_zip(FUNCTIONS)
    suffix = uuid.uuid4().hex[:8]
    arns = {}
    for name in ("echo", "auth"):
        arns[name] = lam.create_function(
            FunctionName=f"harness-{name}-{suffix}",
            Runtime="python3.12",
            Role=lambda_role,
            Handler=f"handlers.{name}.handler",
            Code={"ZipFile": zip_file},
            Timeout=10,
        )["FunctionArn"]
    api_id = gw.create_rest_api(name=f"harness-auth-{suffix}")["id"]
    root = next(r["id"] for r in gw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    authorizer = gw.create_authorizer(
        restApiId=api_id,
        name="clients",
        type="REQUEST",
        authorizerUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arns['auth']}/invocations",
        identitySource="method.request.header.Authorization",
        authorizerResultTtlInSeconds=300,
    )["id"]
    echo_uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arns['echo']}/invocations"
    for part in ("one", "two", "open"):
        resource = gw.create_resource(restApiId=api_id, parentId=root, pathPart=part)["id"]
        custom = part != "open"
        gw.put_method(
            restApiId=api_id,
            resourceId=resource,
            httpMethod="GET",
            authorizationType="CUSTOM" if custom else "NONE",
            **({"authorizerId": authorizer} if custom else {}),
        )
        gw.put_integration(
            restApiId=api_id,
            resourceId=resource,
            httpMethod="GET",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=echo_uri,
        )
    source = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}"
    lam.add_permission(
        FunctionName=arns["echo"],
        StatementId="routes",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"{source}/*/GET/*",
    )
    lam.add_permission(
        FunctionName=arns["auth"],
        StatementId="authorizer",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"{source}/authorizers/{authorizer}",
    )
    gw.create_deployment(restApiId=api_id, stageName="prod")
    client = ApiClient("moto", rest_api_id=api_id, stage="prod", endpoint_url=moto_emulator.endpoint_url)
    return {"client": client}


def _get(api: dict[str, Any], path: str, token: str | None = None) -> Any:
    return api["client"].get(path, {"Authorization": token} if token is not None else {})


def test_allow_passes_principal_and_context_to_the_integration(api: dict[str, Any]) -> None:
    response = _get(api, "/one", "allow-ctx")
    assert response.status == 200, response.body
    assert json.loads(response.body) == {
        "client_id": "p-allow-ctx",
        "merchants": "m1 m2",
        "principalId": "p-allow-ctx",
    }


def test_missing_identity_source_is_401_without_invoking_the_authorizer(api: dict[str, Any]) -> None:
    runner = api["client"].transport.authorizers
    before = runner.invocations
    assert _get(api, "/one").status == 401
    assert _get(api, "/one", "").status == 401
    assert runner.invocations == before


def test_unauthorized_error_is_401_deny_is_403_other_errors_500(api: dict[str, Any]) -> None:
    assert _get(api, "/one", "bad").status == 401
    assert _get(api, "/one", "deny-me").status == 403
    assert _get(api, "/one", "crash").status == 500


def test_decision_is_cached_by_identity_source_for_the_ttl_across_routes(api: dict[str, Any]) -> None:
    runner = api["client"].transport.authorizers
    token = "allow-" + uuid.uuid4().hex
    before = runner.invocations
    assert _get(api, "/one", token).status == 200
    assert _get(api, "/two", token).status == 200
    assert _get(api, "/one", token).status == 200
    assert runner.invocations == before + 1
    assert _get(api, "/open").status == 200  # no authorizer on the route


def test_policy_evaluation_matches_iam_wildcards_and_deny_wins() -> None:
    arn = "arn:aws:execute-api:us-east-1:1:api/prod/GET/one"
    allow = {
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": "arn:aws:execute-api:us-east-1:1:api/prod/*",
    }
    deny = {**allow, "Effect": "Deny", "Resource": arn}
    assert allows({"Statement": [allow]}, arn)
    assert not allows({"Statement": [allow, deny]}, arn)
    assert not allows(
        {"Statement": [{**allow, "Resource": "arn:aws:execute-api:us-east-1:1:api/test/*"}]}, arn
    )
    assert not allows(None, arn)
