"""Which path goes where: model calls and pass-through paths straight to their pure ASGI
endpoints (endpoint/), everything else to the FastAPI app behind them.

FastAPI's middleware stack would wrap every response chunk and cost more than the relay
itself (see the overhead benchmark), so the endpoints are not routes of the app.
"""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway.errors import HttpError, new_request_id
from gateway.wire.formats import error_response, wire_for
from gateway.wire.headers import header_value


class Edge:
    """Dispatches on the exact path: endpoints first, then the FastAPI app."""

    def __init__(self, endpoints: dict[tuple[str, str], ASGIApp], rest: FastAPI) -> None:
        self.endpoints = endpoints
        self.rest = rest
        self.other: ASGIApp = rest  # what serves the other paths: the app, or what wraps it

    def behind_proxies(self, trusted_hosts: list[str] | str) -> None:
        """uvicorn's ProxyHeadersMiddleware (the scope's client and scheme from a trusted
        proxy's X-Forwarded-For and -Proto) in front of the FastAPI app alone, in place of
        uvicorn's in front of everything: the endpoints read neither (their headers go
        upstream as they came either way), and skip its pass over the headers."""
        proxied = ProxyHeadersMiddleware(self.rest, trusted_hosts)  # type: ignore[arg-type]
        self.other = cast(ASGIApp, proxied)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.other(scope, receive, send)


class ByClient:
    """A path both providers serve (GET /v1/models): Anthropic's SDKs send anthropic-version,
    OpenAI's do not."""

    def __init__(self, anthropic: ASGIApp, openai: ASGIApp) -> None:
        self.anthropic = anthropic
        self.openai = openai

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        anthropic = header_value(scope["headers"], b"anthropic-version") is not None
        await (self.anthropic if anthropic else self.openai)(scope, receive, send)


async def framework_error(request: Request, exc: Exception) -> Response:
    """The web framework's own errors (404, 405, a bad query, an unexpected exception) in
    the envelope of the provider the path belongs to, as the endpoints'."""
    if isinstance(exc, StarletteHTTPException):
        headers = tuple(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (exc.headers or {}).items()
        )
        error = HttpError(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")
        error.headers = headers
    elif isinstance(exc, RequestValidationError):
        error = HttpError(422, f"Invalid request: {exc.errors()}")
    else:
        error = HttpError(500, "Internal error in the gateway.")
    wire = wire_for(request.url.path, request.headers.raw)
    raw, body = error_response(wire, error, new_request_id())
    response = Response(body, status_code=error.status)
    response.raw_headers = raw
    return response
