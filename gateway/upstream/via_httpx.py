"""Providers through an httpx transport: httpx's own (`httpcore`), or one a test gives.

The request is httpx's, the response wrapped into the gateway's Response; httpx's errors
become the gateway's here (upstream/__init__.py lists them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import suppress

import httpx

from gateway.errors import (
    GatewayError,
    MalformedResponse,
    UpstreamSilent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import ProviderSettings
from gateway.upstream.request import Urls
from gateway.upstream.response import Response
from gateway.wire.headers import RawHeaders
from gateway.wire.splice import Body, as_bytes

POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
# aiohttp's limit on a response's headers, held here too: both clients refuse the same answers.
MAX_RESPONSE_HEADERS = 128


class ViaHttpx:
    def __init__(
        self,
        providers: dict[str, ProviderSettings],
        origins: dict[str, str],
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        # The transport directly, not an AsyncClient: the client's cookie jar, auth and
        # redirect handling cost ~35% of a relayed request's CPU and a relay needs none.
        self._transport = transport or httpx.AsyncHTTPTransport(limits=POOL_LIMITS)
        self._timeouts = {
            name: httpx.Timeout(p.timeout_s, connect=p.connect_timeout_s).as_dict()
            for name, p in providers.items()
        }
        self._silence = {name: p.timeout_s for name, p in providers.items()}
        self._urls = Urls(origins, httpx.URL)

    async def send(
        self, provider: str, method: str, target: str, head: RawHeaders, body: Body
    ) -> Response:
        request = httpx.Request(
            method,
            self._urls.get(provider, target),
            headers=head,
            stream=httpx.ByteStream(as_bytes(body)),
            extensions={"timeout": self._timeouts[provider]},
        )
        request.read()  # the body held as `content`, as content=body does
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TransportError as error:
            raise opening_error(provider, error, self._silence[provider]) from None
        if 200 <= response.status_code <= 599 and len(response.headers) > MAX_RESPONSE_HEADERS:
            await response.aclose()
            raise MalformedResponse(f"{provider} sent a malformed response (too many headers).")
        return HttpxResponse(response, provider, self._silence[provider])

    async def aclose(self) -> None:
        await self._transport.aclose()


class HttpxResponse(Response):
    __slots__ = ("_chunks", "_response")

    def __init__(self, response: httpx.Response, provider: str, silence_s: float) -> None:
        super().__init__(response.status_code, response.headers.raw, provider, silence_s)
        self._response = response
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        self._chunks: AsyncIterator[bytes] = stream.__aiter__()

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except httpx.TransportError as error:
            raise self.broke(isinstance(error, httpx.TimeoutException)) from None

    async def aclose(self) -> None:
        with suppress(httpx.TransportError):  # a connection that broke: nothing to tell
            await self._response.aclose()


def opening_error(provider: str, error: httpx.TransportError, silence_s: float) -> GatewayError:
    if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
        return UpstreamTimeout(f"{provider} did not answer in time")  # not sent: retried
    if isinstance(error, httpx.TimeoutException):
        return UpstreamSilent(f"{provider} sent nothing for {silence_s:g} s.")
    if isinstance(error, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return MalformedResponse(f"{provider} sent a response that is not valid HTTP.")
    return UpstreamUnavailable(f"{provider} is unreachable: {type(error).__name__}")
