"""Errors the API reports, shaped like Stripe's: ``{"error": {type, code, message, param}}``.

Messages never contain request values: a value may be a card number or a secret.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error with a defined HTTP answer."""

    status = 400
    type = "invalid_request_error"

    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        *,
        status: int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        if status is not None:
            self.status = status
        if error_type is not None:
            self.type = error_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"type": self.type, "code": self.code, "message": self.message, "param": self.param}}


class InvalidRequest(ApiError):
    """400: the request is malformed or breaks a rule; ``param`` names the field."""


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409
    type = "idempotency_error"


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class ServiceUnavailable(ApiError):
    """503 + Retry-After: AWS throttled us or is briefly unavailable; safe to retry."""

    status = 503
    type = "api_error"

    def __init__(self, retry_after_seconds: int = 1) -> None:
        super().__init__(
            "service_unavailable",
            "The service is temporarily unavailable. Retry the request with the same Idempotency-Key.",
            None,
            headers={"Retry-After": str(retry_after_seconds)},
        )


class InternalError(ApiError):
    status = 500
    type = "api_error"

    def __init__(self) -> None:
        super().__init__("internal_error", "An unexpected error occurred.", None)


class DomainError(Exception):
    """A workflow step cannot proceed (reported to Step Functions as the error type)."""


class TransactionNotFound(DomainError):
    pass


class TransitionConflict(DomainError):
    """A conditional state transition lost: the stored status is not the expected one."""


class ProcessorUnavailable(DomainError):
    """The payment processor could not be reached or answered with a server error."""
