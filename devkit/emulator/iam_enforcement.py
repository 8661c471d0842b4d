"""IAM authorization at run time in the embedded emulator: each function's calls are checked against its role.

moto can authenticate and authorize requests itself (``INITIAL_NO_AUTH_ACTION_COUNT``: once that many
requests have been served, every request must be signed by a known access key and be allowed by the
caller's identity policies). Stock moto 5.2.5 is not usable for least-privilege roles as it stands:

* the resource it authorizes is ``"*"`` for almost every service (only S3 objects/buckets, SQS queues and
  ``sts:AssumeRole`` derive an ARN), so any statement scoped to an ARN never matches and every call of a
  least-privilege role is denied;
* action names are matched case-sensitively, ``NotResource`` is not understood, and an ``Allow`` whose
  ``Condition`` it cannot evaluate turns into an explicit deny when a value is present;
* ``dynamodb:TransactWriteItems`` is authorized as one action, while AWS authorizes each item as the
  write it performs (``PutItem``, ``UpdateItem``, ``DeleteItem``, ``ConditionCheckItem``).

:func:`install` keeps moto's authentication (access key lookup, SigV4 signature check, assumed-role
session tokens, the collection of a role's inline and attached policies) and replaces the decision:
:func:`requested` derives the action(s) and resource ARN(s) of a request for the services the deployed
functions call, and :func:`evaluate` applies AWS's identity-policy logic (explicit deny, then allow,
else implicit deny) with case-insensitive actions and ``*``/``?`` wildcards.

What it does not evaluate (weaker than AWS, listed in the README): conditions (an ``Allow`` with a
``Condition`` counts as granted, a ``Deny`` with one is ignored), resource-based policies (key, bucket,
queue, topic policies), permission boundaries and SCPs, the service's own calls made with a role
(KMS on behalf of DynamoDB/S3/SSM/SQS/SNS, Step Functions invoking Lambda, Scheduler, API Gateway
integrations), and the resource of services not derived below (the action is still checked).

The account's administrator: requests signed with a key that is not in AWS's access key format
(:data:`ISSUED_KEY`: ``AKIA``/``ASIA`` + 16 characters, what moto issues for IAM users and
``sts:AssumeRole``) — the ``test`` key of Terraform, the test harness and the ops CLI, moto's own Step
Functions interpreter (``ak``), the ``testing`` keys of in-process ``mock_aws`` unit tests — and
unsigned requests are not evaluated, as the account root is not on AWS. Everything else — the
temporary credentials ``sts:AssumeRole`` hands the Lambda runtime — is.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError

from devkit.emulator.shims import ShimError

ENV_VAR = "OPS_EMULATOR_IAM"
# The default credentials of every admin-side client (Terraform's override, harness clients, ops CLI) and
# the key moto's Step Functions interpreter signs its service integrations with.
ADMIN_ACCESS_KEYS: frozenset[str] = frozenset({"test", "ak"})
# Access key ids as AWS (and moto) issue them: only these identify a principal whose policies apply.
ISSUED_KEY = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")

# Signing name -> IAM service prefix, where they differ.
_IAM_PREFIX = {"monitoring": "cloudwatch", "execute-api": "execute-api", "email": "ses"}
# Operation names -> the IAM action AWS authorizes, where they differ: REST operation names, and SQS's
# batch operations, which are authorized as their single-message action.
_ACTION_ALIASES = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}

_lock = threading.Lock()
_original: Any = None


@dataclass(frozen=True)
class Request:
    """One authorization question: ``action`` (``service:Name``) on ``resource`` (None: not derived)."""

    action: str
    resource: str | None


# --------------------------------------------------------------------------- policy evaluation


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    # IAM wildcards: * any run of characters (including ':' and '/'), ? one character; nothing else.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(_glob(p, action, ignore_case=True) for p in _as_list(statement["NotAction"]))
    return any(_glob(p, action, ignore_case=True) for p in _as_list(statement.get("Action")))


def _resource_matches(statement: Mapping[str, Any], resource: str | None) -> bool:
    if resource is None:  # not derived for this service/action: the action alone decides
        return True
    if "NotResource" in statement:
        return not any(_glob(p, resource, ignore_case=False) for p in _as_list(statement["NotResource"]))
    return any(_glob(p, resource, ignore_case=False) for p in _as_list(statement.get("Resource")))


def policy_document(policy: Any) -> dict[str, Any]:
    """The JSON document of what moto's ``collect_policies`` returns (inline text or managed policy)."""
    if isinstance(policy, str):
        document: dict[str, Any] = json.loads(policy)
        return document
    if isinstance(policy, Mapping):
        return policy_document(policy["policy_document"])
    versions = getattr(policy, "versions", None)
    if versions is not None:
        default = next(v for v in versions if v.is_default)
        return policy_document(default.document)
    raise TypeError(f"unknown policy representation {type(policy).__name__}")


def evaluate(documents: Iterable[Mapping[str, Any]], request: Request) -> str:
    """``"allow"``, ``"explicit-deny"`` or ``"implicit-deny"`` for ``request`` under identity policies."""
    allowed = False
    for document in documents:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if not _action_matches(statement, request.action):
                continue
            if not _resource_matches(statement, request.resource):
                continue
            effect = statement.get("Effect")
            if effect == "Deny":
                if "Condition" in statement:
                    continue  # conditions are not evaluated: never deny on one we cannot check
                return "explicit-deny"
            if effect == "Allow":
                allowed = True
    return "allow" if allowed else "implicit-deny"


# --------------------------------------------------------------------------- request -> action/resource


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def request_params(response: Any) -> dict[str, Any]:
    """The request's parameters from a moto BaseResponse: parsed params, JSON body, query/form data."""
    params: dict[str, Any] = {}
    parsed = getattr(response, "params", None)
    if isinstance(parsed, dict):
        params.update(parsed)
    body = getattr(response, "body", None)
    if isinstance(body, dict):
        params.update(body)
    elif isinstance(body, bytes | str) and body:
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if isinstance(decoded, dict):
            params.update(decoded)
    for key, value in (getattr(response, "querystring", None) or {}).items():
        params.setdefault(key, _first(value))
    return params


def _ssm_parameter_arn(region: str, account: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}"


def _dynamodb(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Request]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"

    if action == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        found = [
            Request(f"dynamodb:{kinds[kind]}", table(item[kind]["TableName"]))
            for item in params.get("TransactItems", [])
            for kind in kinds
            if kind in item
        ]
        return found or [Request("dynamodb:TransactWriteItems", None)]
    if action == "TransactGetItems":
        return [
            Request("dynamodb:GetItem", table(item["Get"]["TableName"]))
            for item in params.get("TransactItems", [])
            if "Get" in item
        ] or [Request("dynamodb:TransactGetItems", None)]
    if action in ("BatchWriteItem", "BatchGetItem"):
        return [Request(f"dynamodb:{action}", table(name)) for name in params.get("RequestItems", {})] or [
            Request(f"dynamodb:{action}", None)
        ]
    name = params.get("TableName")
    if not name:
        return [Request(f"dynamodb:{action}", None if action != "ListTables" else "*")]
    arn = table(str(name))
    index = params.get("IndexName")
    return [Request(f"dynamodb:{action}", f"{arn}/index/{index}" if index else arn)]


def _sqs(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    url = str(params.get("QueueUrl") or params.get("QueueName") or "")
    if not url:
        return None
    parts = urlparse(url).path.strip("/").split("/") if "://" in url else [account, url]
    owner, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (account, parts[-1])
    return f"arn:aws:sqs:{region}:{owner}:{name}"


def _sns(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    target = params.get("TopicArn") or params.get("TargetArn")
    return str(target) if target else None


def _ssm(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    name = params.get("Name") or params.get("Path")
    return _ssm_parameter_arn(region, account, str(name)) if name else None


def _states(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    arn = params.get("stateMachineArn") or params.get("executionArn")
    return str(arn) if arn else None


def _cloudwatch(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    if action in ("DescribeAlarms", "DescribeAlarmHistory"):
        # Without exactly one AlarmName the call lists alarms: AWS authorizes it on every alarm.
        names = params.get("AlarmNames") or []
        name = names[0] if isinstance(names, list) and len(names) == 1 else "*"
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
    if action in ("PutMetricData", "GetMetricData", "GetMetricStatistics", "ListMetrics"):
        return "*"
    return None


def _secretsmanager(
    action: str, params: Mapping[str, Any], path: str, region: str, account: str
) -> str | None:
    secret = str(params.get("SecretId") or "")
    return secret if secret.startswith("arn:") else None


def _kms(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    key = str(params.get("KeyId") or "")
    if key.startswith("arn:"):
        return key
    return f"arn:aws:kms:{region}:{account}:key/{key}" if re.fullmatch(r"[0-9a-f-]{36}", key) else None


def _lambda(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    match = re.search(r"/functions/([^/]+)", path)
    if not match:
        return None
    name = unquote(match.group(1))
    return name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"


def _sts(action: str, params: Mapping[str, Any], path: str, region: str, account: str) -> str | None:
    role = params.get("RoleArn") if action == "AssumeRole" else None
    return str(role) if role else None


# IAM service prefix -> how the resource ARN of a request is derived (None: not derived, action-only check).
_RESOURCES: dict[str, Callable[[str, Mapping[str, Any], str, str, str], str | None]] = {
    "sqs": _sqs,
    "sns": _sns,
    "ssm": _ssm,
    "states": _states,
    "cloudwatch": _cloudwatch,
    "secretsmanager": _secretsmanager,
    "kms": _kms,
    "lambda": _lambda,
    "sts": _sts,
}


def requested(
    service: str,
    action: str,
    params: Mapping[str, Any],
    *,
    path: str,
    region: str,
    account: str,
    resource: str = "*",
) -> list[Request]:
    """What AWS would authorize for this request: one or more (action, resource) pairs.

    ``service`` is the signing name from the credential scope, ``resource`` what moto derived itself
    (used for S3, whose bucket/object ARN moto builds correctly).
    """
    prefix = _IAM_PREFIX.get(service, service)
    action = _ACTION_ALIASES.get((prefix, action), action)
    if prefix == "s3":
        return [Request(f"s3:{action}", resource if resource != "*" else None)]
    if prefix == "dynamodb":
        return _dynamodb(action, params, region, account)
    rule = _RESOURCES.get(prefix)
    return [Request(f"{prefix}:{action}", rule(action, params, path, region, account) if rule else None)]


# --------------------------------------------------------------------------- moto hook


def _credential(headers: Any) -> tuple[str, str, str] | None:
    """(access key id, region, signing service) from a SigV4 Authorization header."""
    auth = headers.get("Authorization") or ""
    match = re.search(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def _denied(response: Any, iam_request: Any, request: Request) -> Exception:
    principal = iam_request._access_key.arn
    where = f" on resource: {request.resource}" if request.resource else ""
    message = (
        f"User: {principal} is not authorized to perform: {request.action}{where} "
        f"because no identity-based policy allows the {request.action} action"
    )
    content_type = str(response.headers.get("Content-Type") or "")
    if "json" in content_type or "cbor" in content_type:
        json_error = JsonRESTError("AccessDeniedException", message)
        json_error.code = 400
        return json_error
    if request.action.startswith("s3:"):
        # moto's S3 error class renders the S3 XML shape.
        try:
            iam_request._raise_access_denied()
        except Exception as exc:  # the raised error is what we return
            return exc
    error = AccessDeniedError(user_arn=principal, action=request.action)
    error.message = message
    return error


def _authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
    """Replacement for ``ActionAuthenticatorMixin._authenticate_and_authorize_action``."""
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    headers = response.headers
    if headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    credential = _credential(headers)
    if credential is None:
        return  # unsigned (moto's own API, presigned URLs): not evaluated
    access_key, region, service = credential
    if access_key in ADMIN_ACCESS_KEYS or not ISSUED_KEY.fullmatch(access_key):
        return
    parsed_url = urlparse(response.uri)
    path = response.raw_path + (f"?{parsed_url.query}" if parsed_url.query else "")
    action = response._get_action()
    iam_request = iam_request_cls(
        account_id=response.current_account,
        method=response.method,
        path=path,
        data=response.data,
        body=response.raw_body,
        headers=headers,
        action=action,
    )  # raises InvalidClientTokenId for an unknown key, InvalidToken for a wrong session token
    iam_request.check_signature()
    if f"{service}:{action}" == "sts:GetCallerIdentity":
        return  # always allowed on AWS
    documents = [policy_document(p) for p in iam_request._access_key.collect_policies()]
    for request in requested(
        service,
        action,
        request_params(response),
        path=parsed_url.path,
        region=region,
        account=response.current_account,
        resource=resource,
    ):
        if evaluate(documents, request) != "allow":
            raise _denied(response, iam_request, request)


def enabled() -> bool:
    return _original is not None and settings.INITIAL_NO_AUTH_ACTION_COUNT == 0


def install(*, enforce: bool = True) -> None:
    """Hook the evaluator into moto; with ``enforce`` authorization starts with the next request."""
    global _original  # noqa: PLW0603 - moto's authorization hook is process-global
    with _lock:
        if _original is None:
            original = vars(ActionAuthenticatorMixin).get("_authenticate_and_authorize_action")
            if original is None:
                raise ShimError(
                    "moto.core.authorization.ActionAuthenticatorMixin."
                    "_authenticate_and_authorize_action is gone"
                )
            _original = original
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize  # type: ignore[method-assign,assignment]
        set_enforcement(enforce)


def set_enforcement(enforce: bool) -> None:
    """Switch authorization on (every request counts) or off (moto's default: never)."""
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if enforce else float("inf")
    ActionAuthenticatorMixin.request_count = 0


def uninstall() -> None:
    global _original  # noqa: PLW0603
    with _lock:
        if _original is not None:
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _original  # type: ignore[method-assign]
            _original = None
        set_enforcement(False)
