"""The only module that talks to providers: one pooled httpx client per provider.

httpx is the client API; its transport is chosen by measurement (bench/overhead.py):
`aiohttp` (httpx-aiohttp) by default, `httpcore` (httpx's own) as the alternative.

Whatever a provider sends back becomes either a response the relay can pass on or one of
the gateway's own errors (errors.py), never an exception of the transport's: a reply that
is not HTTP, a header block over the transport's limits or a status outside 200-599 is
MalformedResponse (502); silence past `timeout_s` is UpstreamSilent (504); a JSON body over
`max_response_bytes` is ResponseTooLarge (502), found without holding more than that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import httpx
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

from gateway.errors import (
    GatewayError,
    MalformedResponse,
    ResponseTooLarge,
    UpstreamSilent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import ProviderSettings
from gateway.wire.headers import RawHeaders, without_emulator_headers

Transport = Literal["aiohttp", "httpcore"]
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
MAX_CACHED_URLS = 1024
# aiohttp's own limits on a response head (8190 bytes a line, 128 headers), held for httpcore
# too, so that both transports refuse the same answers.
MAX_RESPONSE_HEADERS = 128
# The most one read of a body takes: aiohttp's read(n) returns what is buffered, up to n, and
# never waits to fill it, so a larger n only means fewer reads (and relayed sends) per body.
CHUNK_BYTES = 64 * 1024
MAX_CACHED_TARGET_CHARS = 512  # a path with a long query string is parsed, not kept


class Upstream:
    def __init__(
        self,
        providers: dict[str, ProviderSettings],
        kind: Transport = "aiohttp",
        emulated: frozenset[str] = frozenset(),  # providers whose upstream is the emulator
        transport: httpx.AsyncBaseTransport | None = None,  # replaces `kind`: a fake upstream
    ) -> None:
        self._emulated = emulated
        self._origins = {name: p.base_url.rstrip("/") for name, p in providers.items()}
        self._settings = dict(providers)
        self._timeouts = {
            name: httpx.Timeout(p.timeout_s, connect=p.connect_timeout_s).as_dict()
            for name, p in providers.items()
        }
        # The transport directly, not an AsyncClient: the client's cookie jar, auth and
        # redirect handling cost ~35% of a relayed request's CPU and a relay needs none.
        self._transport = transport or _transport(kind)
        self._closed = False
        self._urls: dict[tuple[str, str], httpx.URL] = {}

    def settings(self, provider: str) -> ProviderSettings:
        return self._settings[provider]

    async def open(
        self, provider: str, method: str, target: str, headers: RawHeaders, body: bytes
    ) -> httpx.Response:
        """Sends the request and returns once response headers arrive; the body streams on."""
        if provider not in self._emulated:
            headers = without_emulator_headers(headers)
        url = self._url(provider, target)
        if _framed(headers):
            request = httpx.Request(
                method,
                url,
                headers=[*headers, (b"accept-encoding", b"identity")],
                content=body,
                extensions={"timeout": self._timeouts[provider]},
            )
        else:
            # The headers httpx would add for `content=body`, in its order, given at once:
            # its own way re-parses every header twice more (~15 µs a call).
            host = (b"Host", url.netloc)
            if body:
                first, last = [host], [(b"Content-Length", str(len(body)).encode())]
            else:
                first = [host, (b"Content-Length", b"0")] if method in _SENDING else [host]
                last = []
            request = httpx.Request(
                method,
                url,
                headers=[*first, *headers, (b"accept-encoding", b"identity"), *last],
                stream=httpx.ByteStream(body),
                extensions={"timeout": self._timeouts[provider]},
            )
            request.read()  # the body held as `content`, as content=body does
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TransportError as error:
            raise self._error(provider, error) from None
        status = response.status_code
        if not 200 <= status <= 599 or len(response.headers) > MAX_RESPONSE_HEADERS:
            await response.aclose()
            what = f"status {status}" if not 200 <= status <= 599 else "too many headers"
            raise MalformedResponse(f"{provider} sent a malformed response ({what}).")
        return response

    async def read(self, provider: str, response: httpx.Response) -> bytes:
        """A whole body, held only up to `max_response_bytes`; errors are the gateway's own."""
        limit = self._settings[provider].max_response_bytes
        declared = response_header(response, b"content-length") or b""
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(f"{provider}'s response is over {limit} bytes.")
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(f"{provider}'s response is over {limit} bytes.")
                chunks.append(chunk)
        except httpx.TransportError as error:
            raise self.body_error(provider, error) from None
        return b"".join(chunks)

    def body_error(self, provider: str, error: httpx.TransportError) -> GatewayError:
        """What a transport error while a body streams in means: silence or a cut."""
        if _timed_out(error):
            timeout = self._settings[provider].timeout_s
            return UpstreamSilent(f"{provider} stopped sending its response for {timeout:g} s.")
        return UpstreamUnavailable(f"{provider} closed the connection mid-response")

    def _error(self, provider: str, error: httpx.TransportError) -> GatewayError:
        if _timed_out(error):
            if _connecting(error):
                return UpstreamTimeout(f"{provider} did not answer in time")
            timeout = self._settings[provider].timeout_s
            return UpstreamSilent(f"{provider} sent nothing for {timeout:g} s.")
        if isinstance(error, httpx.RemoteProtocolError | httpx.LocalProtocolError):
            return MalformedResponse(f"{provider} sent a response that is not valid HTTP.")
        return UpstreamUnavailable(f"{provider} is unreachable: {type(error).__name__}")

    def _url(self, provider: str, target: str) -> httpx.URL:
        # Parsing a URL costs ~45 µs; clients call a handful of paths over and over.
        key = (provider, target)
        url = self._urls.get(key)
        if url is None:
            url = httpx.URL(self._origins[provider] + target)
            if len(self._urls) < MAX_CACHED_URLS and len(target) <= MAX_CACHED_TARGET_CHARS:
                self._urls[key] = url
        return url

    async def aclose(self) -> None:
        self._closed = True
        await self._transport.aclose()

    @property
    def usable(self) -> bool:
        return not self._closed


class _Aiohttp(AiohttpTransport):
    """httpx-aiohttp, with every aiohttp error mapped to an httpx one.

    The library maps connection errors only: a response aiohttp cannot parse (not HTTP, a
    header over its limits, bytes after a 204) escaped as aiohttp.ClientResponseError, and
    a body's errors other than a payload error were not mapped either.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError:
            raise
        except (aiohttp.ClientError, HttpProcessingError) as error:
            raise httpx.RemoteProtocolError(type(error).__name__) from error
        stream = response.stream
        if isinstance(stream, AiohttpResponseStream):
            response.stream = _AiohttpBody(stream._aiohttp_response)
        return response


class _AiohttpBody(httpx.AsyncByteStream):
    """The library's body stream with all of aiohttp's errors mapped: a timeout to
    httpx.ReadTimeout, anything else to httpx.ReadError."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk
        except (aiohttp.ClientError, HttpProcessingError) as error:
            if isinstance(error, asyncio.TimeoutError):
                raise httpx.ReadTimeout(type(error).__name__) from error
            raise httpx.ReadError(type(error).__name__) from error

    async def aclose(self) -> None:
        try:
            await self._response.__aexit__(None, None, None)
        except (aiohttp.ClientError, HttpProcessingError) as error:
            raise httpx.ReadError(type(error).__name__) from error


_SENDING = frozenset({"POST", "PUT", "PATCH"})  # httpx sends Content-Length: 0 for these
_FRAMING = frozenset({b"host", b"content-length", b"transfer-encoding"})


def _framed(headers: RawHeaders) -> bool:
    """The caller set a header httpx would otherwise add (never the relay: it drops them)."""
    return any(name.lower() in _FRAMING for name, _ in headers)


def response_header(response: httpx.Response, name: bytes) -> bytes | None:
    """A response header's value (several joined by ", ", as httpx's `get` does), read from
    the raw list: httpx's own lookup decodes every header to find one."""
    values = [value for key, value in response.headers.raw if key.lower() == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


def _transport(kind: Transport) -> httpx.AsyncBaseTransport:
    if kind == "aiohttp":
        return _Aiohttp(limits=POOL_LIMITS)
    return httpx.AsyncHTTPTransport(limits=POOL_LIMITS)


def _timed_out(error: httpx.TransportError) -> bool:
    # httpx-aiohttp maps every aiohttp connection error, a refused connection included, to
    # ConnectTimeout; the aiohttp exception it wraps says whether time really ran out.
    cause = error.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return isinstance(cause, TimeoutError)
    return isinstance(error, httpx.TimeoutException)


def _connecting(error: httpx.TransportError) -> bool:
    """A timeout before the request was sent: safe to retry."""
    cause = error.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return isinstance(cause, aiohttp.ConnectionTimeoutError)
    return isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout)
