"""The head's limits between a connection's requests, in process over a recorded transport
(test_protocol_pieces.py's): bytes sent after a response on a kept-alive connection start the
next head's clock, whatever they are, and an earlier request's bytes read together with the
start of the next head (a pipelining client) do not count as that head's.

- Blank lines between requests (`\\r\\n`, which the parser skips before a request line) are
  not a request, so they began no head and its timer never ran, while each read stopped the
  idle timer: a client trickling them held a kept-alive connection, and a slot under
  `max_connections`, for as long as it liked.
- The bytes of a read were all counted as the head under way when one began in it: a
  pipelined POST's body counted as the next request's head, which got 431 before the POST
  was answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.server.protocol import HEAD_FRAMING, EdgeProtocol, edge_protocol
from tests.unit.server.test_protocol_pieces import Transport

MAX_HEAD_BYTES = 2048
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


async def drained(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers 200 with the bytes it read."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read %d" % size})


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def _connected(loop: asyncio.AbstractEventLoop) -> tuple[EdgeProtocol, Transport]:
    config = uvicorn.Config(drained, lifespan="off", log_level="critical")
    config.load()
    factory: Any = edge_protocol(MAX_HEAD_BYTES, 100, 10.0, 100, 1.0)
    protocol: EdgeProtocol = factory(config, ServerState(), {}, loop)
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    """The app's tasks run: a handful of steps of a loop nothing else runs on."""
    for _ in range(50):
        loop.run_until_complete(asyncio.sleep(0))


def _statuses(written: bytes) -> list[bytes]:
    return [line for line in written.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize("blank", [b"\r\n", b"\n", b"\r\n" * 1000])
def test_blank_lines_after_a_response_run_the_head_timer(
    loop: asyncio.AbstractEventLoop, blank: bytes
) -> None:
    protocol, transport = _connected(loop)
    protocol.data_received(GET)
    _settle(loop)
    assert _statuses(transport.written) == [b"HTTP/1.1 200 OK"]
    assert protocol.timeout_keep_alive_task is not None  # idle: the idle timer runs
    protocol.data_received(blank)  # stops the idle timer (uvicorn's data_received)
    timer = protocol.head_timer
    assert timer is not None, "no timer runs: the connection is held as long as it sends"
    timer.cancel()
    protocol._head_timed_out()  # what the loop runs once the timer is due
    assert _statuses(transport.written)[-1].startswith(b"HTTP/1.1 408")
    assert transport.closed


def test_the_next_request_after_blank_lines_is_served(loop: asyncio.AbstractEventLoop) -> None:
    protocol, transport = _connected(loop)
    protocol.data_received(GET)
    _settle(loop)
    protocol.data_received(b"\r\n\r\n")
    protocol.data_received(GET)
    _settle(loop)
    assert _statuses(transport.written) == [b"HTTP/1.1 200 OK"] * 2
    assert protocol.head_timer is None
    assert not transport.closed


def _post(size: int) -> bytes:
    head = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    return head + b"b" * size


@pytest.mark.parametrize("size", [100, MAX_HEAD_BYTES, 5 * MAX_HEAD_BYTES])
def test_a_pipelined_body_is_not_the_next_heads(loop: asyncio.AbstractEventLoop, size: int) -> None:
    protocol, transport = _connected(loop)
    protocol.data_received(_post(size) + GET[:20])  # one read: a request, the next's start
    _settle(loop)
    protocol.data_received(GET[20:])
    _settle(loop)
    assert _statuses(transport.written) == [b"HTTP/1.1 200 OK"] * 2
    assert b"read %d" % size in transport.written


def test_pipelined_requests_then_a_head_at_the_limit(loop: asyncio.AbstractEventLoop) -> None:
    """The earlier requests' bytes in the read are not the head's: it is served at the limit."""
    protocol, transport = _connected(loop)
    pad = MAX_HEAD_BYTES - len(b"/healthz") - len(b"Host: x\r\n") - len(b"x-pad: \r\n")
    at_limit = b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-pad: " + b"p" * pad + b"\r\n\r\n"
    protocol.data_received(_post(3000) + _post(10) + at_limit[:-1])
    _settle(loop)
    protocol.data_received(at_limit[-1:])
    _settle(loop)
    assert _statuses(transport.written) == [b"HTTP/1.1 200 OK"] * 3


@pytest.mark.parametrize("after", [GET, _post(5000)])
def test_a_line_that_never_ends_after_a_pipelined_request_is_cut(
    loop: asyncio.AbstractEventLoop, after: bytes
) -> None:
    """The bound stays real: what is not known to be an earlier request's counts, so the
    line is cut within the limit, its framing and the earlier request's own framing."""
    protocol, transport = _connected(loop)
    start = b"GET /healthz HTTP/1.1\r\nx-pad: "
    protocol.data_received(after + start + b"p" * (MAX_HEAD_BYTES - len(start) - 100))
    _settle(loop)
    assert not transport.closed  # a head well within the limit, still arriving
    for _ in range(100 + HEAD_FRAMING + len(after)):
        protocol.data_received(b"p")
        if transport.closed:
            break
    _settle(loop)
    assert _statuses(transport.written)[-1].startswith(b"HTTP/1.1 431")
    assert transport.closed
