"""The floor: a do-nothing passthrough on the gateway's own stack, for bench/overhead.py.

Raw ASGI under uvicorn (uvloop, httptools) — no FastAPI, no Starlette — relaying each request
to the same path upstream and its response bytes back, chunk by chunk: no parsing, no
metering, no disconnect watch, no request id. Two clients:

- `httpx-aiohttp`: httpx requests sent through `AiohttpTransport.handle_async_request`, as
  gateway/upstream.py does; the floor under `gateway serve` with its default transport.
- `aiohttp`: aiohttp's `ClientSession` directly, without the httpx layer.

    .venv/bin/python bench/passthrough.py --client httpx-aiohttp --port 8091 \
        --upstream http://127.0.0.1:8090
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

import aiohttp
import httpx
import uvicorn
from httpx_aiohttp import AiohttpTransport

from gateway.wire.headers import RawHeaders, client_response_headers, upstream_request_headers

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
MAX_CONNECTIONS = 1000  # the gateway's pool limit (gateway/upstream.py)


class Client(Protocol):
    async def relay(
        self, method: str, url: str, headers: RawHeaders, body: bytes, send: Send
    ) -> None: ...

    async def aclose(self) -> None: ...


class HttpxAiohttp:
    """httpx's request and response types over the httpx-aiohttp transport, no AsyncClient."""

    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=200)
        self._transport = AiohttpTransport(limits=limits)
        self._urls: dict[str, httpx.URL] = {}  # parsed once: a benchmark calls one URL

    async def relay(
        self, method: str, url: str, headers: RawHeaders, body: bytes, send: Send
    ) -> None:
        parsed = self._urls.get(url) or self._urls.setdefault(url, httpx.URL(url))
        request = httpx.Request(method, parsed, headers=headers, content=body)
        response = await self._transport.handle_async_request(request)
        try:
            await _start(send, response.status_code, response.headers.raw)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            async for chunk in response.stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()


class Aiohttp:
    """aiohttp's ClientSession directly, configured as the httpx-aiohttp transport does."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None  # needs the running loop

    async def relay(
        self, method: str, url: str, headers: RawHeaders, body: bytes, send: Send
    ) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector)
        sent = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        async with self._session.request(
            method,
            url,
            headers=sent,
            data=body,
            allow_redirects=False,
            auto_decompress=False,
        ) as response:
            await _start(send, response.status, response.raw_headers)
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _start(send: Send, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
    response_headers = client_response_headers(headers, [])
    await send({"type": "http.response.start", "status": status, "headers": response_headers})


class Passthrough:
    """The ASGI application: any HTTP request, relayed to `origin` + the same target."""

    def __init__(self, origin: str, client: Client) -> None:
        self.origin = origin.rstrip("/")
        self.client = client

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        url = self.origin + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        headers = upstream_request_headers(scope["headers"])
        await self.client.relay(scope["method"], url, headers, b"".join(chunks), send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=["httpx-aiohttp", "aiohttp"], required=True)
    parser.add_argument("--upstream", required=True, help="origin, e.g. http://127.0.0.1:8090")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    client: Client = HttpxAiohttp() if args.client == "httpx-aiohttp" else Aiohttp()
    # The options `gateway serve` runs with; uvloop and httptools are what its "auto" picks.
    uvicorn.run(
        Passthrough(args.upstream, client),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
