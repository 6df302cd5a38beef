"""Errors the gateway itself raises, and how they reach the caller.

    GatewayError                    status, error type, message
    ├── InvalidRequest          400 the body is not a JSON object, or a field is unusable
    ├── UnsupportedMediaType    415 the body is not declared as JSON
    ├── PayloadTooLarge         413 the body is (or is declared) over `server.max_body_bytes`
    ├── RequestTimeout          408 the head or body did not arrive in time (and close)
    ├── Overloaded              503 over `server.max_connections` or
    │                               `server.max_incoming_body_bytes` (and close)
    ├── CircuitOpen             529 (Anthropic) / 503 (OpenAI) a model whose breaker is open
    │                               (retry-after: until its probe)
    ├── HttpError               any status the web framework or HTTP server answers
    ├── UpstreamUnavailable     502 the provider could not be reached or dropped the request
    │   ├── MalformedResponse   502 what came back is not a valid HTTP response
    │   └── ResponseTooLarge    502 a JSON body over `providers.<name>.max_response_bytes`
    ├── UpstreamTimeout         504 the provider did not answer in time
    │   ├── UpstreamSilent      504 it took the request, then sent nothing for `timeout_s`
    │   └── DeadlinePassed      504 the call's total time (`total_timeout_s`, a step's) ran out
    ├── AuthenticationFailed    401 an unknown or revoked gateway key, or none when one is required
    ├── PermissionDenied        403 a gateway key used for a model or step it does not allow
    ├── RateLimited             429 a gateway key over its requests or tokens a minute (retry-after)
    ├── SpendLimitReached       429 a key's or team's budget is spent (no retry-after)
    └── StateUnavailable        503 a fail_closed key while the state store cannot be reached

Upstream's own errors are never wrapped: they are relayed unchanged. One function per wire
format renders a GatewayError (render_anthropic, render_openai): the tree is the same for
both, the type in the body is the caller's. Messages never carry a provider key.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable

from gateway.wire import anthropic_errors, openai_errors


class _RequestIds:
    """Request ids cut from random bytes read 256 ids at a time: the system's random source
    is a syscall (getrandom), ~3 % of a served call's CPU when read for each id."""

    __slots__ = ("at", "text")
    HEX = 24  # 12 random bytes an id
    POOL = 256  # ids a read

    def __init__(self) -> None:
        self.text = ""  # hex digits of the bytes read
        self.at = 0  # where the next id starts in them

    def drop(self) -> None:
        self.text, self.at = "", 0

    def next(self) -> str:
        at = self.at
        if at >= len(self.text):
            self.text, at = secrets.token_hex(self.POOL * self.HEX // 2), 0
        self.at = end = at + self.HEX
        return "gw_" + self.text[at:end]


_REQUEST_IDS = _RequestIds()
# A forked process draws its own: the parent's unread bytes are not shared.
os.register_at_fork(after_in_child=_REQUEST_IDS.drop)


# The id of a request the gateway answers: in x-gateway-request-id and the call log. `gw_`
# and 24 hex digits of the system's random source, as `secrets.token_hex(12)`. The pool's
# bound method itself: one frame a request, not a function's that calls it.
new_request_id: Callable[[], str] = _REQUEST_IDS.next


class GatewayError(Exception):
    status = 500
    error_type = "api_error"
    error_code: str | None = None  # the Anthropic body's error.details.error_code
    headers: tuple[tuple[bytes, bytes], ...] = ()  # added to the error response

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # Set once the gateway has retried: the caller must not multiply the attempts.
        self.retried = False


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class UnsupportedMediaType(GatewayError):
    status = 415
    error_type = "invalid_request_error"


# The rest of the request is not read: the connection cannot carry another one.
CLOSE = (b"connection", b"close")


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "request_too_large"
    headers = (CLOSE,)


class RequestTimeout(GatewayError):
    status = 408
    error_type = "timeout_error"
    headers = (CLOSE,)


class Overloaded(GatewayError):
    status = 503
    error_type = "overloaded_error"
    headers = (CLOSE,)


class CircuitOpen(GatewayError):
    """A model whose breaker is open (cascade/breaker.py): the provider's own overloaded
    answer (Anthropic 529 overloaded_error, OpenAI 503), with when to try again."""

    error_type = "overloaded_error"

    def __init__(self, message: str, status: int, retry_after_s: float) -> None:
        super().__init__(message)
        self.status = status
        self.headers = ((b"retry-after", str(math.ceil(retry_after_s)).encode()),)


class HttpError(GatewayError):
    """A status the framework (404, 405...) or the HTTP server (400, 431) answers itself."""

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = anthropic_errors.error_type_for(status)
        self.headers = headers


class UpstreamUnavailable(GatewayError):
    status = 502
    error_type = "api_error"


class MalformedResponse(UpstreamUnavailable):
    pass


class ResponseTooLarge(UpstreamUnavailable):
    pass


class UpstreamTimeout(GatewayError):
    status = 504
    error_type = "timeout_error"


class UpstreamSilent(UpstreamTimeout):
    pass


class DeadlinePassed(UpstreamTimeout):
    pass


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = ((b"retry-after", str(retry_after_s).encode()),)


class SpendLimitReached(GatewayError):
    """As the API's own spend cap: no retry-after, and retrying cannot help before the reset."""

    status = 429
    error_type = "rate_limit_error"
    error_code = "enforced_spend_limit_reached"
    headers = ((b"x-should-retry", b"false"),)


class StateUnavailable(GatewayError):
    status = 503
    error_type = "api_error"


def render_anthropic(error: GatewayError, request_id: str) -> bytes:
    return anthropic_errors.error_body(
        error.error_type, error.message, request_id, error.error_code
    )


def render_openai(error: GatewayError) -> bytes:
    """OpenAI's body has no request id: it travels in the x-request-id header instead."""
    status = error.status
    return openai_errors.error_body(
        error.message,
        openai_errors.error_type_for(status),
        code=openai_errors.error_code_for(status),
    )
