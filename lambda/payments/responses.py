"""API Gateway (REST, Lambda proxy) requests and responses.

Every response — success or error — carries ``X-Request-Id`` and the CORS headers, and
errors use Stripe's shape. Request bodies are only ever handed to validation, never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from payments.errors import ApiError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from payments.validation import MAX_BODY_BYTES

REQUEST_ID_HEADER = "X-Request-Id"
ALLOWED_HEADERS = "Content-Type,X-Api-Key,Idempotency-Key,X-Amz-Date,Authorization,X-Amz-Security-Token"
ALLOWED_METHODS = "GET,POST,OPTIONS"
EXPOSED_HEADERS = "X-Request-Id,Retry-After,Idempotent-Replayed"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    resource: str
    path: str
    headers: dict[str, str]  # lower-case names
    path_parameters: dict[str, str]
    request_id: str
    api_key_id: str | None
    origin: str | None
    raw_body: str | None = None
    base64_body: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def body_bytes(self) -> bytes:
        """The request body; 413 when over the limit, 400 when base64 is broken."""
        raw = self.raw_body or ""
        # Size check before decoding: the decoded form is never larger than this bound allows.
        limit = MAX_BODY_BYTES * 4 // 3 + 4 if self.base64_body else MAX_BODY_BYTES
        if len(raw) > limit:
            raise PayloadTooLarge("payload_too_large", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
        if self.base64_body:
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequest("invalid_body", "The request body is not valid base64.") from None
        else:
            try:
                data = raw.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequest("invalid_json", "The request body is not valid UTF-8 text.") from None
        if len(data) > MAX_BODY_BYTES:
            raise PayloadTooLarge("payload_too_large", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
        return data

    def require_json(self) -> None:
        """415 unless the Content-Type (when given) is JSON."""
        content_type = self.header("content-type")
        if content_type is None or not content_type.strip():
            return
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            raise UnsupportedMediaType(
                "unsupported_media_type", "Content-Type must be application/json.", "Content-Type"
            )


def parse_event(event: Mapping[str, Any] | None, aws_request_id: str | None = None) -> HttpRequest:
    event = event if isinstance(event, Mapping) else {}
    raw_headers = event.get("headers") or {}
    headers = {
        str(k).lower(): str(v)
        for k, v in (raw_headers.items() if isinstance(raw_headers, Mapping) else [])
        if v is not None
    }
    context = event.get("requestContext") or {}
    context = context if isinstance(context, Mapping) else {}
    identity = context.get("identity") or {}
    identity = identity if isinstance(identity, Mapping) else {}
    request_id = str(context.get("requestId") or aws_request_id or secrets.token_hex(16))
    body = event.get("body")
    path_params = event.get("pathParameters") or {}
    return HttpRequest(
        method=str(event.get("httpMethod") or context.get("httpMethod") or "").upper(),
        resource=str(event.get("resource") or context.get("resourcePath") or ""),
        path=str(event.get("path") or ""),
        headers=headers,
        path_parameters={str(k): str(v) for k, v in path_params.items()}
        if isinstance(path_params, Mapping)
        else {},
        request_id=request_id,
        api_key_id=str(identity["apiKeyId"]) if identity.get("apiKeyId") else None,
        origin=headers.get("origin"),
        raw_body=body if isinstance(body, str) else (json.dumps(body) if body is not None else None),
        base64_body=bool(event.get("isBase64Encoded")),
    )


def cors_headers(origin: str | None, allowed: Sequence[str]) -> dict[str, str]:
    if "*" in allowed:
        allow_origin = "*"
    elif origin and origin in allowed:
        allow_origin = origin
    else:
        # Not an allowed origin: name the first allowed one, which the browser will refuse.
        allow_origin = allowed[0] if allowed else "null"
    headers = {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
    }
    if allow_origin != "*":
        headers["Vary"] = "Origin"
    return headers


def json_response(
    status: int,
    body: Any,
    request: HttpRequest,
    allowed_origins: Sequence[str],
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            REQUEST_ID_HEADER: request.request_id,
            **cors_headers(request.origin, allowed_origins),
            **(headers or {}),
        },
        "body": json.dumps(body, separators=(",", ":"), default=str),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError, request: HttpRequest, allowed_origins: Sequence[str]) -> dict[str, Any]:
    return json_response(error.status, error.body(), request, allowed_origins, error.headers)
