"""The only package that talks to providers: one pooled client for all of them.

The client is chosen by measurement (bench/instructions.py, docs/benchmarks.md): `aiohttp`,
aiohttp's ClientSession called directly (direct.py), by default; `httpcore`, httpx's own
transport (via_httpx.py), as the alternative, and any httpx transport a test gives. Either
way the relay gets the gateway's own Response (response.py): a status, the raw header
lines and the body's chunks.

Whatever a provider sends back becomes either a response the relay can pass on or one of
the gateway's own errors (errors.py), never an exception of the client's: a reply that is
not HTTP, a header block over aiohttp's limits (8190 bytes a line, 128 headers) or a status
outside 200-599 is MalformedResponse (502); no connection within `connect_timeout_s` (or
none free in the pool within `timeout_s`) is UpstreamTimeout (504, retried: nothing was
sent); silence past `timeout_s` is UpstreamSilent (504); a refused or cut connection is
UpstreamUnavailable (502); a JSON body over `max_response_bytes` is ResponseTooLarge (502),
found without holding more than that.
"""

from __future__ import annotations

from typing import Literal, Protocol

import httpx

from gateway.errors import MalformedResponse, ResponseTooLarge
from gateway.settings import ProviderSettings
from gateway.upstream.direct import Direct
from gateway.upstream.request import request_head
from gateway.upstream.response import BodyBroken, Response
from gateway.upstream.via_httpx import MAX_RESPONSE_HEADERS, ViaHttpx
from gateway.wire.headers import RawHeaders, without_emulator_headers
from gateway.wire.splice import Body

__all__ = ["MAX_RESPONSE_HEADERS", "BodyBroken", "Response", "Transport", "Upstream"]

Transport = Literal["aiohttp", "httpcore"]


class Client(Protocol):
    async def send(
        self, provider: str, method: str, target: str, head: RawHeaders, body: Body
    ) -> Response: ...

    async def aclose(self) -> None: ...


class Upstream:
    def __init__(
        self,
        providers: dict[str, ProviderSettings],
        kind: Transport = "aiohttp",
        emulated: frozenset[str] = frozenset(),  # providers whose upstream is the emulator
        transport: httpx.AsyncBaseTransport | None = None,  # replaces `kind`: a fake upstream
    ) -> None:
        self._emulated = emulated
        origins = {name: p.base_url.rstrip("/") for name, p in providers.items()}
        self._netlocs = {name: httpx.URL(origin).netloc for name, origin in origins.items()}
        self._settings = dict(providers)
        self._client: Client
        if kind == "aiohttp" and transport is None:
            self._client = Direct(providers, origins)
        else:
            self._client = ViaHttpx(providers, origins, transport)
        self._closed = False

    def settings(self, provider: str) -> ProviderSettings:
        return self._settings[provider]

    async def open(
        self, provider: str, method: str, target: str, headers: RawHeaders, body: Body
    ) -> Response:
        """Sends the request and returns once response headers arrive; the body streams on."""
        if provider not in self._emulated:
            headers = without_emulator_headers(headers)
        head = request_head(method, self._netlocs[provider], headers, body)
        response = await self._client.send(provider, method, target, head, body)
        status = response.status_code
        if not 200 <= status <= 599:
            await response.aclose()
            raise MalformedResponse(f"{provider} sent a malformed response (status {status}).")
        return response

    async def read(self, provider: str, response: Response) -> bytes:
        """A whole body, held only up to `max_response_bytes`; errors are the gateway's own."""
        limit = self._settings[provider].max_response_bytes
        declared = response.header(b"content-length") or b""
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(f"{provider}'s response is over {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response:
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"{provider}'s response is over {limit} bytes.")
            chunks.append(chunk)
            if response.drained():
                break  # the read that would say so is skipped (a JSON body in one chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        self._closed = True
        await self._client.aclose()

    @property
    def usable(self) -> bool:
        return not self._closed
