"""Providers through aiohttp's client, called directly: the default (`aiohttp`).

One ClientSession and connection pool for every provider, configured as httpx-aiohttp did
when httpx sat on top of it (the same pool, TLS, timeouts and bytes on the wire), less its
cookie jar: a provider's cookie is not carried to another client's call. aiohttp's errors
become the gateway's here (upstream/__init__.py lists them).
"""

from __future__ import annotations

from contextlib import suppress

import aiohttp
import httpx
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import (
    GatewayError,
    MalformedResponse,
    UpstreamSilent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import ProviderSettings
from gateway.upstream.parts import PartsPayload
from gateway.upstream.request import Urls
from gateway.upstream.response import CHUNK_BYTES, Response
from gateway.upstream.via_httpx import POOL_LIMITS
from gateway.wire.headers import RawHeaders
from gateway.wire.splice import Body

AiohttpError = (aiohttp.ClientError, HttpProcessingError)
# Not an answer aiohttp could not read: the connection, or the URL, failed.
_UNREACHABLE = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    aiohttp.InvalidURL,
    aiohttp.NonHttpUrlClientError,
)


class Direct:
    def __init__(self, providers: dict[str, ProviderSettings], origins: dict[str, str]) -> None:
        self._timeouts = {
            # sock_read is the silence limit; connect bounds the wait for a pooled connection
            # and its opening, sock_connect the opening alone.
            name: aiohttp.ClientTimeout(
                connect=p.timeout_s, sock_connect=p.connect_timeout_s, sock_read=p.timeout_s
            )
            for name, p in providers.items()
        }
        self._silence = {name: p.timeout_s for name, p in providers.items()}
        self._urls = Urls(origins, parse_url)
        self._session: aiohttp.ClientSession | None = None  # made in the running loop

    async def send(
        self, provider: str, method: str, target: str, head: RawHeaders, body: Body
    ) -> Response:
        session = self._session or self._open()
        data = (body or None) if isinstance(body, bytes) else PartsPayload(body)
        try:
            reply = await session.request(
                method,
                self._urls.get(provider, target),
                headers=as_sent(head),
                data=data,
                allow_redirects=False,
                compress=False,
                timeout=self._timeouts[provider],
            )
        except AiohttpError as error:
            raise opening_error(provider, error, self._silence[provider]) from None
        return AiohttpResponse(reply, provider, self._silence[provider])

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=POOL_LIMITS.max_connections or 0,
            keepalive_timeout=POOL_LIMITS.keepalive_expiry,
            ssl=httpx.create_ssl_context(),  # httpx's trust store (certifi), as before
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
        )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class AiohttpResponse(Response):
    __slots__ = ("_content", "_reply")

    def __init__(self, reply: aiohttp.ClientResponse, provider: str, silence_s: float) -> None:
        super().__init__(reply.status, reply.raw_headers, provider, silence_s)
        self._reply = reply
        self._content = reply.content

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._content.read(CHUNK_BYTES)
        except AiohttpError as error:
            # aiohttp keeps the error on the body's reader and raises it as it is: its
            # traceback's frames (this one's and the reader's) hold the reader, a reference
            # cycle left to the collector with the response. Dropped, it is freed at once.
            error.__traceback__ = None
            raise self.broke(isinstance(error, TimeoutError)) from None
        if not chunk:
            raise StopAsyncIteration
        return chunk

    def drained(self) -> bool:
        content = self._content
        return content.at_eof() and content.exception() is None

    async def aclose(self) -> None:
        reply = self._reply
        reply.release()
        with suppress(*AiohttpError):  # the upload failed: the answer is given up on anyway
            await reply.wait_for_close()


def as_sent(head: RawHeaders) -> CIMultiDict[str]:
    """The header lines as httpx handed them to aiohttp: names in lower case, a repeated
    name's values joined by ", ", decoded as UTF-8 (Latin-1 if any line is not)."""
    try:
        return _merged(head, "utf-8")
    except UnicodeDecodeError:
        return _merged(head, "latin-1")


def _merged(head: RawHeaders, encoding: str) -> CIMultiDict[str]:
    merged = {name.lower().decode(encoding): value.decode(encoding) for name, value in head}
    if len(merged) < len(head):  # a name repeated: its values joined, at its first place
        merged = {}
        for name, value in head:
            key, text = name.lower().decode(encoding), value.decode(encoding)
            merged[key] = text if key not in merged else f"{merged[key]}, {text}"
    return CIMultiDict(merged)


def parse_url(text: str) -> URL:
    # httpx's normalized form, as aiohttp was given it: the same request target and Host.
    return URL(str(httpx.URL(text)))


def opening_error(provider: str, error: Exception, silence_s: float) -> GatewayError:
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"{provider} did not answer in time")  # not sent: retried
    if isinstance(error, TimeoutError):
        return UpstreamSilent(f"{provider} sent nothing for {silence_s:g} s.")
    if isinstance(error, _UNREACHABLE):
        return UpstreamUnavailable(f"{provider} is unreachable: {type(error).__name__}")
    # aiohttp could not read the answer: not HTTP, a head over its limits, a bad status line.
    return MalformedResponse(f"{provider} sent a response that is not valid HTTP.")
