"""The OpenAI error envelope: status → error type, and the JSON body.

Body `{"error":{"message","type","param","code"}}` (docs/wire.md); the SDK unwraps
`body["error"]` and picks its exception class by status alone. Types per status are the ones
real responses carry, as clients report them: OpenAI documents the statuses, not a type table.
"""

from __future__ import annotations

import orjson

from gateway.wire.sse import encode_event

ERROR_TYPE_BY_STATUS: dict[int, str] = {
    401: "invalid_request_error",  # with code "invalid_api_key"
    403: "permission_error",
    404: "invalid_request_error",  # with code "model_not_found" for an unknown model
    429: "tokens",  # or "requests": the limit that was hit
}
ERROR_CODE_BY_STATUS: dict[int, str] = {401: "invalid_api_key", 429: "rate_limit_exceeded"}
# OpenAI has no 529: an overloaded engine answers 503 (the SDK retries any status ≥ 500).
OVERLOADED_STATUS = 503


def error_type_for(status: int) -> str:
    """The type real responses carry for a status: other 4xx invalid requests, 5xx server."""
    default = "invalid_request_error" if status < 500 else "server_error"
    return ERROR_TYPE_BY_STATUS.get(status, default)


def error_code_for(status: int) -> str | None:
    return ERROR_CODE_BY_STATUS.get(status)


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def chat_error_chunk(message: str, error_type: str = "server_error") -> bytes:
    """A chat stream's mid-stream failure: the SDK raises on any chunk whose data holds `error`."""
    error = {"message": message, "type": error_type, "param": None, "code": None}
    return encode_event(orjson.dumps({"error": error}).decode())


def responses_error_event(message: str, code: str = "server_error") -> bytes:
    """A Responses stream's `error` event (docs/wire.md), as the API sends it before giving up."""
    data = orjson.dumps({"type": "error", "code": code, "message": message, "param": None})
    return encode_event(data.decode(), "error")
