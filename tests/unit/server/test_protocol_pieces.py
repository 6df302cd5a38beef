"""The head's byte limit is the same however the head arrives: the gateway's protocol fed a
head at once, a few bytes at a time and a byte at a time, in process over a recorded
transport, admits a head at the limit and refuses one byte more with 431; and a header line
that never ends is cut once what arrived passes the limit by the head's framing allowance.

The pieces are what the transport hands the protocol, so this does not depend on how the
loopback stack coalesces a client's small sends (the integration test cannot choose that)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.server.protocol import HEAD_FRAMING, edge_protocol

MAX_HEAD_BYTES = 2048
URL = b"/healthz"


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Transport(asyncio.Transport):
    """What the protocol writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def fed(loop: asyncio.AbstractEventLoop, head: bytes, piece: int) -> bytes:
    """The status line the protocol answers `head` with, fed `piece` bytes at a time."""
    config = uvicorn.Config(ok, lifespan="off", log_level="critical")
    config.load()
    factory: Any = edge_protocol(MAX_HEAD_BYTES, 100, 10.0, 100, 1.0)
    protocol = factory(config, ServerState(), {}, loop)
    transport = Transport()
    protocol.connection_made(transport)
    for at in range(0, len(head), piece):
        if transport.closed:
            break
        protocol.data_received(head[at : at + piece])
    for _ in range(50):  # the app's task: a handful of steps of a loop nothing else runs on
        if transport.written or transport.closed:
            break
        loop.run_until_complete(asyncio.sleep(0))
    protocol.connection_lost(None)
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    return transport.written.split(b"\r\n", 1)[0]


def head(pad: int, method: bytes = b"GET") -> bytes:
    """A head of Host and one padding line; the limit counts URL + `name: value\\r\\n`."""
    return method + b" " + URL + b" HTTP/1.1\r\nHost: x\r\nx-pad: " + b"p" * pad + b"\r\n\r\n"


def counted(pad: int) -> int:
    return len(URL) + len(b"Host") + 1 + 4 + len(b"x-pad") + pad + 4


AT_LIMIT = MAX_HEAD_BYTES - counted(0)


@pytest.mark.parametrize("piece", [1, 5, 17, 64, 1 << 20])
def test_a_head_at_the_limit_is_served_in_any_pieces(
    loop: asyncio.AbstractEventLoop, piece: int
) -> None:
    assert counted(AT_LIMIT) == MAX_HEAD_BYTES
    assert fed(loop, head(AT_LIMIT), piece) == b"HTTP/1.1 200 OK"
    assert fed(loop, head(AT_LIMIT, b"UNSUBSCRIBE"), piece) == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize("piece", [1, 5, 17, 64, 1 << 20])
def test_one_byte_more_is_refused_in_any_pieces(
    loop: asyncio.AbstractEventLoop, piece: int
) -> None:
    status = fed(loop, head(AT_LIMIT + 1), piece)
    assert status.startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("piece", [1, 7, 1 << 20])
def test_a_line_that_never_ends_is_cut_past_the_framing(
    loop: asyncio.AbstractEventLoop, piece: int
) -> None:
    start = b"GET " + URL + b" HTTP/1.1\r\nHost: x\r\nx-pad: "
    allowed = start + b"p" * (MAX_HEAD_BYTES + HEAD_FRAMING - len(start))
    assert fed(loop, allowed, piece) == b""  # still waiting for the line's end
    assert fed(loop, allowed + b"p", piece).startswith(b"HTTP/1.1 431")
