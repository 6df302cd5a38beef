"""A finished request's cycle is freed by its reference count (server/edge_cycle.py): the
gateway's protocol, served by uvicorn in this process, leaves no request cycle in a
reference cycle for the garbage collector; and a cycle adopted under another uvicorn keeps
uvicorn's own send and receive."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.asgi.disconnect import DisconnectWatch
from gateway.server.cycle import COPIED_FROM
from gateway.server.edge_cycle import EdgeCycle, adopt, completion
from gateway.server.protocol import edge_protocol
from tests.unit.server.test_arrival import cycle

CALLS = 30


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the body and answers it, inside a disconnect watch, as the endpoints do."""
    if scope["type"] != "http":
        return
    async with DisconnectWatch(receive, scope) as watch:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        watch.disarm()
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable stays in gc.garbage
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def cycles_in_garbage() -> int:
    gc.collect()
    return sum(isinstance(found, RequestResponseCycle) for found in gc.garbage)


def test_served_requests_leave_no_cycle_to_the_collector(collector_off: None) -> None:
    async def go() -> tuple[int, list[int]]:
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
        statuses = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for number in range(CALLS):
                response = await client.post("/", content=b"x" * number)
                statuses.append(response.status_code)
            # The connection's last cycle is still the protocol's: count the others.
            found = cycles_in_garbage()
        server.should_exit = True
        await task
        return found, statuses

    found, statuses = asyncio.run(go())
    assert statuses == [200] * CALLS
    assert found == 0


def test_adopted_under_the_copied_uvicorn_and_not_under_another() -> None:
    ours, theirs = cycle(), cycle()
    own_send, own_receive = theirs.send, theirs.receive
    adopt(ours, COPIED_FROM + "0")
    adopt(theirs, "9.0.0")
    assert type(ours) is EdgeCycle
    assert type(theirs) is RequestResponseCycle
    assert theirs.receive == own_receive
    assert theirs.send != own_send  # wrapped, to close early responses


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
