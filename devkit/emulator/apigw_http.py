"""The emulated API Gateway stage over HTTP, on the embedded emulator's own loopback port.

moto's server answers its own ``/restapis/<id>/<stage>/_user_request_/<path>`` with a 500 (it cannot
run a Lambda proxy integration). :class:`StageGateway` wraps moto's WSGI app and serves that path with
:class:`devkit.emulator.apigw.EmulatedRestApi` instead: the deployed routes, the API-key check, request
validation, gateway responses and CORS, and the deployed functions behind them. It is the URL shape
LocalStack serves every stage under, so ``curl``, the demo and the tests address a local stage the same
way on both backends (:func:`stage_url`). Everything else goes to moto untouched.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from botocore.exceptions import ClientError

from devkit.emulator.apigw import EmulatedRestApi

__all__ = ["USER_REQUEST_PATH", "StageGateway", "stage_url"]

# /restapis/<api id>/<stage>/_user_request_[/<resource path>]
USER_REQUEST_PATH = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")

# Request headers API Gateway never passes to an integration as such (hop-by-hop, or rewritten).
_SKIPPED_HEADERS = {"HTTP_CONNECTION", "HTTP_KEEP_ALIVE", "HTTP_TRANSFER_ENCODING", "HTTP_HOST"}

StartResponse = Callable[..., Any]


def stage_url(endpoint_url: str, api_id: str, stage: str) -> str:
    """The base URL of a deployed stage on a local emulator (moto here, or LocalStack): append the
    resource path, e.g. ``<url>/transactions``."""
    return f"{endpoint_url.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_"


class StageGateway:
    """WSGI middleware: deployed stages under ``_user_request_``, everything else to ``app``."""

    def __init__(self, app: Any, endpoint_url: str = "", region: str = "us-east-1") -> None:
        self.app = app
        # Set once the server knows its port (the gateway's own AWS calls go back to this server).
        self.endpoint_url = endpoint_url
        self.region = region
        self._lock = threading.Lock()
        # (api id, stage) -> (deployment id, the gateway built from that deployment's configuration)
        self._stages: dict[tuple[str, str], tuple[str, EmulatedRestApi]] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # The path as sent (percent-encoded): path parameters are decoded once, by the route match.
        raw = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "").split("?", 1)[0]
        match = USER_REQUEST_PATH.match(raw)
        if match is None or not self.endpoint_url:
            return self.app(environ, start_response)
        return self._serve(match, environ, start_response)

    def gateway(self, api_id: str, stage: str) -> EmulatedRestApi | None:
        """The gateway of the stage as currently deployed (rebuilt when the stage's deployment changes);
        None when there is no such stage."""
        with self._lock:
            cached = self._stages.get((api_id, stage))
        probe = cached[1] if cached else EmulatedRestApi(api_id, stage, endpoint_url=self.endpoint_url)
        try:
            deployment = str(
                probe.apigateway.get_stage(restApiId=api_id, stageName=stage).get("deploymentId") or ""
            )
        except ClientError:
            return None
        if cached and cached[0] == deployment:
            return cached[1]
        gateway = EmulatedRestApi(api_id, stage, endpoint_url=self.endpoint_url, region=self.region)
        with self._lock:
            self._stages[(api_id, stage)] = (deployment, gateway)
        return gateway

    def _serve(
        self, match: re.Match[str], environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        gateway = self.gateway(match.group("api"), match.group("stage"))
        if gateway is None:
            # What an execute-api host answers for an API or stage that does not exist.
            forbidden = b'{"message":"Forbidden"}'
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "ForbiddenException"),
                    ("Content-Length", str(len(forbidden))),
                ],
            )
            return [forbidden]
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_") and key not in _SKIPPED_HEADERS
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = str(environ["CONTENT_TYPE"])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body: bytes | None = environ["wsgi.input"].read(length) if length > 0 else None
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING") or "", keep_blank_values=True))
        path = match.group("path") or "/"
        response = gateway.request(str(environ.get("REQUEST_METHOD") or "GET"), path, headers, body, query)
        payload = response.body.encode("utf-8")
        out_headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        out_headers.append(("Content-Length", str(len(payload))))
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        start_response(f"{response.status} {reason}", out_headers)
        return [payload]
