"""What every emulated endpoint shares, whatever the provider: a request id per call, and an
EmulatedError rendered in the provider's own envelope with its own headers."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.emulator.errors import EmulatedError

Endpoint = Callable[[Request], Awaitable[ASGIApp]]
ErrorBody = Callable[[EmulatedError, str], bytes]  # (error, request id) -> the JSON body
Headers = Callable[[str], dict[str, str]]  # request id -> the headers every response carries


def too_deep(body: object) -> bool:
    """Nested past what the emulator can serialise (orjson's 255 levels): the real APIs
    refuse such a body with a 400, and so does the emulator, instead of failing with a 500."""
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return True
    return False


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def guarded(handler: Endpoint, error_body: ErrorBody, headers: Headers) -> Endpoint:
    async def endpoint(request: Request) -> ASGIApp:
        request_id = new_id("req_")
        request.state.request_id = request_id
        try:
            return await handler(request)
        except EmulatedError as error:
            return Response(
                error_body(error, request_id),
                status_code=error.status,
                headers={**headers(request_id), **error.headers},
                media_type="application/json",
            )

    return endpoint
