"""The Anthropic error envelope: status ↔ error type, JSON body, and the mid-stream error event.

Spec: https://platform.claude.com/docs/en/api/errors (docs/wire.md#anthropic-errors).
"""

from __future__ import annotations

import orjson

from gateway.wire.sse import encode_event

ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """The documented type for a status; other 4xx are invalid requests, other 5xx api errors."""
    default = "invalid_request_error" if status < 500 else "api_error"
    return ERROR_TYPE_BY_STATUS.get(status, default)


def error_body(
    error_type: str, message: str, request_id: str | None, error_code: str | None = None
) -> bytes:
    error: dict[str, object] = {"type": error_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return orjson.dumps({"type": "error", "error": error, "request_id": request_id})


def error_event(error_type: str, message: str) -> bytes:
    """An `event: error` as the API sends it after a 200 when a stream fails."""
    data = orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return encode_event(data.decode(), "error")
