"""Small AWS fixtures several test directories create: service roles and a trivial function package."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any


def trust_policy(service: str = "lambda.amazonaws.com") -> dict[str, Any]:
    """The trust policy that lets ``service`` assume a role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def create_service_role(iam: Any, name: str, service: str = "lambda.amazonaws.com") -> str:
    """Create role ``name`` that ``service`` may assume, without permissions; returns its ARN."""
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))
    return str(role["Role"]["Arn"])


def echo_function_zip() -> bytes:
    """A deployment package whose ``app.handler`` returns its event."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()
