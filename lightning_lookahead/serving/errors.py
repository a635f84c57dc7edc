"""Errors answered in OpenAI's error format, so OpenAI clients raise their usual exception classes with our message.

Every ``code`` the server can answer is listed in ``ERROR_CODES`` (docs/serving.md has the table); the metrics
pre-create one ``lookahead_errors_total`` series per code, so dashboards see zeros rather than missing series.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

#: Every error ``code`` this server answers (a backend's own errors pass through as ``backend_error``).
ERROR_CODES: tuple[str, ...] = (
    "invalid_json",
    "invalid_request",
    "invalid_model",
    "no_user_message",
    "costs_not_configured",
    "invalid_api_key",
    "model_not_found",
    "not_found",
    "method_not_allowed",
    "request_too_large",
    "not_ready",
    "overloaded",
    "routing_failed",
    "backend_unavailable",
    "bad_upstream",
    "timeout",
    "backend_error",
)
#: Seconds a client is told to wait (``Retry-After``) when the server is overloaded or still loading its router.
RETRY_AFTER_OVERLOADED_S = 1
RETRY_AFTER_NOT_READY_S = 5


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class ApiError(Exception):
    """An error answered in OpenAI's error format, with optional extra headers (e.g. ``Retry-After``)."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.headers = dict(headers or {})

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            error_body(self.message, self.type, self.code),
            status_code=self.status,
            headers={**self.headers, **(headers or {})},
        )


def overloaded(what: str) -> ApiError:
    """503 ``overloaded`` with ``Retry-After``: shed load instead of queueing without bound."""
    message = f"the server is at its limit of {what}; retry shortly"
    return ApiError(503, message, "server_error", "overloaded", {"retry-after": str(RETRY_AFTER_OVERLOADED_S)})


def not_ready(detail: str = "the router is still loading") -> ApiError:
    """503 ``not_ready`` with ``Retry-After``, while the worker's router loads (or after it failed to)."""
    return ApiError(503, detail, "server_error", "not_ready", {"retry-after": str(RETRY_AFTER_NOT_READY_S)})
