"""Upstream's default client, aiohttp called directly, against a raw socket server: it sends
the bytes httpx over aiohttp (httpx-aiohttp, its client before) sent, and whatever comes
back is a response or the gateway's own error, never aiohttp's."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from gateway.errors import (
    GatewayError,
    MalformedResponse,
    ResponseTooLarge,
    UpstreamSilent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import ProviderSettings
from gateway.upstream import MAX_RESPONSE_HEADERS, Response, Upstream
from gateway.upstream.direct import Direct
from gateway.wire.headers import RawHeaders

Writer = asyncio.StreamWriter
Reply = Callable[[Writer], Awaitable[None]]
JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"


def answer(raw: bytes) -> Reply:
    async def reply(writer: Writer) -> None:
        writer.write(raw)

    return reply


def then_cut(raw: bytes) -> Reply:
    async def reply(writer: Writer) -> None:
        writer.write(raw)
        await writer.drain()
        writer.transport.abort()

    return reply


def then_silent(raw: bytes) -> Reply:
    async def reply(writer: Writer) -> None:
        writer.write(raw)
        await asyncio.sleep(30)

    return reply


class Server:
    """Reads each request whole (its bytes kept in `seen`), then answers with `reply`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.seen: list[bytes] = []

    async def connection(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.seen.append(head + await reader.readexactly(length))
                await self.reply(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(reply: Reply, host: str = "127.0.0.1") -> AsyncIterator[tuple[Server, str]]:
    server = Server(reply)
    listening = await asyncio.start_server(server.connection, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield server, f"http://{host}:{port}"
    finally:
        listening.close()


def direct(url: str, **limits: Any) -> Upstream:
    upstream = Upstream({"anthropic": ProviderSettings(base_url=url, **limits)})
    assert isinstance(upstream._client, Direct)
    return upstream


async def call(upstream: Upstream, headers: RawHeaders | None = None) -> bytes:
    response = await upstream.open("anthropic", "POST", "/v1/messages", headers or [], b"{}")
    try:
        return await upstream.read("anthropic", response)
    finally:
        await response.aclose()


def outcome(reply: Reply, **limits: Any) -> bytes | GatewayError:
    async def go() -> bytes | GatewayError:
        async with serving(reply) as (_, url):
            upstream = direct(url, **limits)
            try:
                return await call(upstream)
            except GatewayError as error:
                return error
            finally:
                await upstream.aclose()

    return asyncio.run(go())


# --- what is sent -------------------------------------------------------------------------

OK = answer(JSON_HEAD + b"content-length: 2\r\n\r\n{}")
AE = (b"accept-encoding", b"identity")
REQUESTS: list[tuple[str, str, RawHeaders, bytes]] = [
    ("POST", "/v1/messages?beta=true", [(b"x-api-key", b"k"), (b"content-type", b"a/j")], b"{}"),
    ("POST", "/v1/m", [(b"X-Api-Key", b"k"), (b"User-Agent", b"cli/2"), (b"accept", b"*")], b"1"),
    ("POST", "/v1/m", [(b"x-dup", b"1"), (b"X-Dup", b"2"), (b"cookie", b"a=b")], b"x" * 70_000),
    ("POST", "/v1/m", [], b""),
    ("PUT", "/v1/m", [], b""),
    ("GET", "/v1/models?limit=1000", [(b"x-api-key", b"k")], b""),
    ("POST", "/v1/m", [(b"x-utf8", "héllo".encode()), (b"x-b", b"1")], b"{}"),
    ("POST", "/v1/m", [(b"x-latin", b"caf\xe9"), (b"x-utf8", "é".encode())], b"{}"),
    ("POST", "/v1/m", [(b"Host", b"elsewhere"), (b"Content-Length", b"2")], b"{}"),
    ("POST", "/v1/m", [(b"transfer-encoding", b"chunked")], b"{}"),
    ("POST", "/v1/m", [(b"accept-encoding", b"gzip")], b"{}"),
]


@pytest.mark.parametrize(("method", "target", "headers", "body"), REQUESTS)
def test_the_bytes_sent_are_those_httpx_over_aiohttp_sent(
    method: str, target: str, headers: RawHeaders, body: bytes
) -> None:
    async def go() -> list[bytes]:
        async with serving(OK) as (server, url):
            upstream = direct(url)
            response = await upstream.open("anthropic", method, target, headers, body)
            await upstream.read("anthropic", response)
            await upstream.aclose()
            before = AiohttpTransport()
            request = httpx.Request(method, url + target, headers=[*headers, AE], content=body)
            response = await before.handle_async_request(request)
            await response.aread()
            await before.aclose()
            return server.seen

    now, then = asyncio.run(go())
    assert now == then


def test_no_cookie_a_provider_sets_is_sent_again() -> None:
    reply = answer(JSON_HEAD + b"set-cookie: __cf_bm=x; Path=/\r\ncontent-length: 2\r\n\r\n{}")

    async def go() -> list[bytes]:
        async with serving(reply, host="localhost") as (server, url):
            upstream = direct(url)
            await call(upstream)
            await call(upstream, [(b"cookie", b"mine=1")])
            await upstream.aclose()
            return server.seen

    first, second = asyncio.run(go())
    assert b"cookie" not in first.lower()
    assert b"__cf_bm" not in second
    assert b"\r\ncookie: mine=1\r\n" in second  # the client's own cookie goes as it came


def test_a_compressed_body_is_relayed_as_it_came_and_a_redirect_not_followed() -> None:
    packed = gzip.compress(b'{"a":1}')
    head = JSON_HEAD + b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(packed)
    assert outcome(answer(head + packed)) == packed

    async def go() -> Response:
        reply = answer(b"HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n")
        async with serving(reply) as (server, url):
            upstream = direct(url)
            response = await upstream.open("anthropic", "POST", "/v1/messages", [], b"{}")
            await response.aclose()
            await upstream.aclose()
            assert len(server.seen) == 1
            return response

    assert asyncio.run(go()).status_code == 302


def test_the_response_headers_are_the_lines_upstream_sent() -> None:
    reply = answer(JSON_HEAD + b"X-Dup: 1\r\nx-dup: 2\r\ncontent-length: 2\r\n\r\n{}")

    async def go() -> Response:
        async with serving(reply) as (_, url):
            upstream = direct(url)
            response = await upstream.open("anthropic", "POST", "/v1/messages", [], b"{}")
            await response.aclose()
            await upstream.aclose()
            return response

    response = asyncio.run(go())
    repeated = [line for line in response.headers if line[0].lower() == b"x-dup"]
    assert repeated == [(b"X-Dup", b"1"), (b"x-dup", b"2")]
    assert response.header(b"x-dup") == b"1, 2"
    assert response.is_success


# --- what comes back ----------------------------------------------------------------------


def status_line(status: bytes) -> Reply:
    return answer(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\n{}")


def headers(count: int) -> Reply:
    lines = b"".join(b"x-h%d: v\r\n" % i for i in range(count - 1))
    return answer(b"HTTP/1.1 200 OK\r\n" + lines + b"content-length: 2\r\n\r\n{}")


@pytest.mark.parametrize(
    "reply",
    [
        answer(b"SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP at all\x00\xff\r\n\r\n"),
        status_line(b"999 Whatever"),
        status_line(b"600 Beyond"),
        status_line(b"101 Switching Protocols"),
        headers(MAX_RESPONSE_HEADERS + 1),
        answer(b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 8200 + b"\r\ncontent-length: 0\r\n\r\n"),
    ],
    ids=["not_http", "status_999", "status_600", "status_101", "many_headers", "long_header"],
)
def test_a_malformed_response_is_a_502(reply: Reply) -> None:
    error = outcome(reply)
    assert isinstance(error, MalformedResponse)
    assert error.status == 502


def test_as_many_headers_as_the_limit_are_taken() -> None:
    assert outcome(headers(MAX_RESPONSE_HEADERS)) == b"{}"


def test_silence_before_the_headers_is_upstream_silent() -> None:
    error = outcome(then_silent(b""), timeout_s=0.2)
    assert type(error) is UpstreamSilent
    assert error.message == "anthropic sent nothing for 0.2 s."


def test_silence_midway_through_a_body_is_upstream_silent() -> None:
    error = outcome(then_silent(JSON_HEAD + b'content-length: 50\r\n\r\n{"a'), timeout_s=0.2)
    assert type(error) is UpstreamSilent
    assert error.message == "anthropic stopped sending its response for 0.2 s."


def test_a_body_cut_off_is_upstream_unavailable() -> None:
    error = outcome(then_cut(JSON_HEAD + b'content-length: 50\r\n\r\n{"a'))
    assert type(error) is UpstreamUnavailable


def test_a_closed_connection_before_the_headers_is_upstream_unavailable() -> None:
    assert type(outcome(then_cut(b""))) is UpstreamUnavailable


def test_a_refused_connection_is_upstream_unavailable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    error = asyncio.run(failing(direct(f"http://127.0.0.1:{port}")))
    assert type(error) is UpstreamUnavailable
    assert error.status == 502


def test_no_connection_within_connect_timeout_is_a_retryable_upstream_timeout() -> None:
    """A listener whose backlog is full: the SYN goes unanswered, as to a dead host."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        waiting = [socket.socket() for _ in range(3)]
        for sock in waiting:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        try:
            upstream = direct(f"http://127.0.0.1:{port}", connect_timeout_s=0.2, timeout_s=30)
            error = asyncio.run(failing(upstream))
        finally:
            for sock in waiting:
                sock.close()
    assert type(error) is UpstreamTimeout
    assert error.status == 504


async def failing(upstream: Upstream) -> GatewayError:
    try:
        with pytest.raises(GatewayError) as raised:
            await call(upstream)
    finally:
        await upstream.aclose()
    return raised.value


TWELVE_CHUNKED = b"6\r\nxxxxxx\r\n6\r\nyyyyyy\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        answer(JSON_HEAD + b"content-length: 11\r\n\r\n" + b"x" * 11),
        answer(JSON_HEAD + b"transfer-encoding: chunked\r\n\r\n" + TWELVE_CHUNKED),
    ],
    ids=["declared", "chunked"],
)
def test_a_body_over_the_cap_is_response_too_large(reply: Reply) -> None:
    assert type(outcome(reply, max_response_bytes=10)) is ResponseTooLarge


def in_pieces(*pieces: bytes, then: str = "end") -> Reply:
    async def reply(writer: Writer) -> None:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        if then == "cut":
            writer.transport.abort()

    return reply


BODY = b'{"type":"message","content":[]}'


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (answer(JSON_HEAD + b"content-length: 31\r\n\r\n" + BODY), BODY),
        (in_pieces(JSON_HEAD + b"content-length: 31\r\n\r\n", BODY[:9], BODY[9:]), BODY),
        (
            answer(JSON_HEAD + b"transfer-encoding: chunked\r\n\r\n" + TWELVE_CHUNKED),
            b"x" * 6 + b"y" * 6,
        ),
        (
            in_pieces(
                JSON_HEAD + b"transfer-encoding: chunked\r\n\r\n", b"6\r\nxxxxxx\r\n", b"0\r\n\r\n"
            ),
            b"x" * 6,
        ),
        (in_pieces(JSON_HEAD + b"content-length: 31\r\n\r\n", BODY[:9], then="cut"), "cut"),
        (
            in_pieces(
                JSON_HEAD + b"transfer-encoding: chunked\r\n\r\n", b"6\r\nxxxxxx\r\n", then="cut"
            ),
            "cut",
        ),
    ],
)
def test_a_whole_body_is_read_to_its_end_and_no_further(
    reply: Reply, expected: bytes | str
) -> None:
    """A body read whole stops at the chunk after which aiohttp has seen its end (drained),
    the same bytes as reading on to the empty read; a body cut before its end still fails."""
    got = outcome(reply, max_response_bytes=31)
    if expected == "cut":
        assert type(got) is UpstreamUnavailable
    else:
        assert got == expected


def test_drained_only_once_the_body_has_ended() -> None:
    async def go() -> list[bool]:
        async with serving(
            in_pieces(JSON_HEAD + b"content-length: 31\r\n\r\n", BODY[:9], BODY[9:])
        ) as (_, url):
            upstream = direct(url)
            try:
                response = await upstream.open("anthropic", "POST", "/v1/messages", [], b"{}")
                seen = [response.drained()]
                async for _ in response:
                    seen.append(response.drained())
                await response.aclose()
                return seen
            finally:
                await upstream.aclose()

    seen = asyncio.run(go())  # before any read, after each chunk: only the last is the end
    assert seen[0] is False
    assert seen[-1] is True
    assert not any(seen[1:-1])
