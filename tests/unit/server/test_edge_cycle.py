"""A finished request's cycle is freed by its reference count (server/edge_cycle.py), and so
is a closed connection's protocol (server/edge_cycle.py, `CycleTransport`): the gateway's
protocol, served by uvicorn in this process, leaves no request cycle and no protocol in a
reference cycle for the garbage collector, on a kept-alive connection or on connections that
close (the client's choice, an early answer, a client that leaves mid-response); and a cycle
adopted under another uvicorn keeps uvicorn's own send and receive."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.asgi.disconnect import DisconnectWatch
from gateway.server import protocol
from gateway.server.cycle import COPIED_FROM
from gateway.server.edge_cycle import ClosingCycle, CycleTransport, EdgeCycle, adopt, completion
from gateway.server.protocol import EdgeProtocol, edge_protocol
from tests.support.collector import collector_off, garbage_of
from tests.unit.server.test_arrival import cycle

CALLS = 30
SERVED = (RequestResponseCycle, EdgeProtocol)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the body and answers it, inside a disconnect watch, as the endpoints do; on
    /early answers before reading it, on /slow streams until the client leaves."""
    if scope["type"] != "http":
        return
    async with DisconnectWatch(receive, scope) as watch:
        if scope["path"] == "/early":
            await send({"type": "http.response.start", "status": 413, "headers": []})
            watch.disarm()
            await send({"type": "http.response.body", "body": b"too large"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while scope["path"] == "/slow":
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0.005)
        watch.disarm()
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def collector() -> Iterator[None]:
    with collector_off():
        yield


@asynccontextmanager
async def served() -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=edge_protocol(64 * 1024, 100, 10.0, 100, 1.0),  # type: ignore[arg-type]
        lifespan="off",
        log_level="critical",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(3000):  # up to 30 s, on a loaded machine
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def test_served_requests_leave_no_cycle_to_the_collector(collector: None) -> None:
    async def go() -> tuple[list[str], list[int]]:
        statuses = []
        async with served() as url, httpx.AsyncClient(base_url=url) as client:
            for number in range(CALLS):
                response = await client.post("/", content=b"x" * number)
                statuses.append(response.status_code)
            # The connection's last cycle is still the protocol's: count the others.
            found = garbage_of(RequestResponseCycle)
        return found, statuses

    found, statuses = asyncio.run(go())
    assert statuses == [200] * CALLS
    assert found == []


async def closing(url: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    """One request on a connection of its own, which the client closes when it is done."""
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(path, content=body, headers=headers)
        return response.status_code


async def leaving(url: str) -> int:
    """One request whose client leaves once the response has started."""
    async with (
        httpx.AsyncClient(base_url=url) as client,
        client.stream("POST", "/slow", content=b"{}") as response,
    ):
        async for _ in response.aiter_raw():
            break
        return response.status_code


CLOSINGS = {
    "kept alive, then closed by the client": lambda url: closing(url, "/", b"{}", {}),
    "connection: close": lambda url: closing(url, "/", b"{}", {"connection": "close"}),
    "answered before the body was read": lambda url: closing(url, "/early", b"x" * 300_000, {}),
    "the client left mid-response": leaving,
}


@pytest.mark.parametrize("way", list(CLOSINGS))
def test_closed_connections_leave_no_protocol_to_the_collector(way: str, collector: None) -> None:
    async def go() -> tuple[list[str], set[int]]:
        statuses = set()
        async with served() as url:
            for _ in range(CALLS // 3):
                statuses.add(await CLOSINGS[way](url))
            await asyncio.sleep(0.2)  # each connection's end seen by the server
            found = garbage_of(*SERVED)
        return found, statuses

    found, statuses = asyncio.run(go())
    assert statuses == ({413} if "before" in way else {200})
    assert found == []


def test_adopted_under_the_copied_uvicorn_and_not_under_another() -> None:
    ours, theirs = cycle(), cycle()
    own_receive = RequestResponseCycle.receive
    adopt(ours, COPIED_FROM + "0")
    adopt(theirs, "9.0.0")
    assert type(ours) is EdgeCycle
    assert type(theirs) is ClosingCycle  # uvicorn's send, made to close early responses
    assert theirs.receive.__func__ is own_receive
    assert isinstance(theirs.body, bytearray)
    assert "send" not in vars(theirs)  # a method: nothing on the cycle holds the cycle


def test_under_another_uvicorn_served_requests_leave_no_cycle_either(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "adopt", lambda made: adopt(made, "9.0.0"))

    async def go() -> tuple[list[str], list[int]]:
        statuses = []
        async with served() as url, httpx.AsyncClient(base_url=url) as client:
            for number in range(CALLS):
                response = await client.post("/", content=b"x" * number)
                statuses.append(response.status_code)
            statuses.append(await closing(url, "/early", b"x" * 300_000, {}))
            await asyncio.sleep(0.2)
            found = garbage_of(*SERVED)
        return found, statuses

    found, statuses = asyncio.run(go())
    assert statuses == [200] * CALLS + [413]
    assert found == []


def test_completion_follows_the_cycle_and_holds_it_weakly() -> None:
    made = cycle()
    complete = completion(made)
    assert complete() is False
    made.response_complete = True
    assert complete() is True
    made.response_complete = False
    del made
    gc.collect()
    assert complete() is True  # gone: its request has ended


def test_a_close_once_the_protocol_is_gone_is_the_transports() -> None:
    class Connection:
        def __init__(self) -> None:
            self.closed = 0
            self.write = self.is_closing = None

        def close(self) -> None:
            self.closed += 1

    class Protocol:
        def __init__(self) -> None:
            self.closed = 0

        def close_after_response(self) -> None:
            self.closed += 1

    connection, protocol = Connection(), Protocol()
    seen = CycleTransport(connection, protocol)  # type: ignore[arg-type]
    seen.close()
    assert (protocol.closed, connection.closed) == (1, 0)  # the protocol's, which may linger
    del protocol  # the connection was lost: the transport no longer holds its protocol
    seen.close()
    assert connection.closed == 1
