"""The only module that talks to providers: one pooled httpx client per provider.

httpx is the client API; its transport is chosen by measurement (bench/overhead.py):
`aiohttp` (httpx-aiohttp) by default, `httpcore` (httpx's own) as the alternative.
"""

from __future__ import annotations

from typing import Literal

import httpx
from httpx_aiohttp import AiohttpTransport

from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.settings import ProviderSettings
from gateway.wire.headers import RawHeaders

Transport = Literal["aiohttp", "httpcore"]
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
MAX_CACHED_URLS = 1024
MAX_CACHED_TARGET_CHARS = 512  # a path with a long query string is parsed, not kept


class Upstream:
    def __init__(self, providers: dict[str, ProviderSettings], transport: Transport) -> None:
        self._origins = {name: p.base_url.rstrip("/") for name, p in providers.items()}
        self._timeouts = {
            name: httpx.Timeout(p.timeout_s, connect=p.connect_timeout_s).as_dict()
            for name, p in providers.items()
        }
        # The transport directly, not an AsyncClient: the client's cookie jar, auth and
        # redirect handling cost ~35% of a relayed request's CPU and a relay needs none.
        self._transport = _transport(transport)
        self._closed = False
        self._urls: dict[tuple[str, str], httpx.URL] = {}

    async def open(
        self, provider: str, method: str, target: str, headers: RawHeaders, body: bytes
    ) -> httpx.Response:
        """Sends the request and returns once response headers arrive; the body streams on."""
        request = httpx.Request(
            method,
            self._url(provider, target),
            headers=[*headers, (b"accept-encoding", b"identity")],
            content=body,
            extensions={"timeout": self._timeouts[provider]},
        )
        try:
            return await self._transport.handle_async_request(request)
        except httpx.TransportError as error:
            if _is_timeout(error):
                raise UpstreamTimeout(f"{provider} did not answer in time") from None
            raise UpstreamUnavailable(
                f"{provider} is unreachable: {type(error).__name__}"
            ) from None

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


def _transport(kind: Transport) -> httpx.AsyncBaseTransport:
    if kind == "aiohttp":
        return AiohttpTransport(limits=POOL_LIMITS)
    return httpx.AsyncHTTPTransport(limits=POOL_LIMITS)


def _is_timeout(error: httpx.TransportError) -> bool:
    # httpx-aiohttp maps every aiohttp connection error, a refused connection included, to
    # ConnectTimeout; the aiohttp exception it wraps says whether time really ran out.
    cause = error.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return isinstance(cause, TimeoutError)
    return isinstance(error, httpx.TimeoutException)
