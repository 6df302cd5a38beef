"""The request cycle's receive (gateway/server/arrival.py) gives the app the messages uvicorn's
gives, pauses and resumes reading as uvicorn's does, and copies a chunk it hands out whole
not at all."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.server.arrival import Arrival
from gateway.server.cycle import COPIED_FROM
from gateway.server.edge_cycle import adopt
from tests.support.transport import Transport


def cycle(expect_100_continue: bool = False) -> Any:
    transport = Transport()
    return RequestResponseCycle(
        scope={"method": "POST", "type": "http"},  # type: ignore[typeddict-item]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=expect_100_continue,
        keep_alive=True,
        on_response=lambda: None,
    )


def on_body(made: Any, chunk: bytes) -> None:
    """uvicorn's own on_body, on a protocol that holds only what it reads."""
    parser = SimpleNamespace(should_upgrade=lambda: False)
    protocol = SimpleNamespace(parser=parser, cycle=made, flow=made.flow)
    HttpToolsProtocol.on_body(protocol, chunk)  # type: ignore[arg-type]


def on_message_complete(made: Any) -> None:
    made.more_body = False
    made.message_event.set()


BIG = HIGH_WATER_LIMIT // 2 + 1
# Each step: ("body", chunk), ("end",), ("lost",), ("done",) or ("receive",).
SCRIPTS: list[list[tuple[Any, ...]]] = [
    [("body", b"{}"), ("end",), ("receive",)],
    [("end",), ("receive",)],
    [("body", b"a"), ("receive",), ("body", b"b"), ("body", b"c"), ("end",), ("receive",)],
    [("body", b"x" * BIG), ("body", b"y" * BIG), ("receive",), ("body", b"z"), ("receive",)],
    [("body", b"x" * (HIGH_WATER_LIMIT + 1)), ("receive",), ("end",), ("receive",)],
    [("body", b"a"), ("lost",), ("receive",)],
    [("body", b"a"), ("done",), ("receive",)],
    [("body", b"a"), ("body", b""), ("end",), ("receive",), ("lost",), ("receive",)],
]


def run(script: list[tuple[Any, ...]], ours: bool, expect_100: bool) -> Any:
    async def drive() -> Any:
        made = cycle(expect_100)
        if ours:
            adopt(made)
        receive = made.receive
        got = []
        for step in script:
            if step[0] == "body":
                on_body(made, step[1])
            elif step[0] == "end":
                on_message_complete(made)
            elif step[0] == "lost":
                made.disconnected = True
                made.message_event.set()
            elif step[0] == "done":
                made.response_complete = True
            else:
                message = await receive()
                got.append((message, type(message.get("body"))))
        return got, made.transport.written, made.transport.paused, made.more_body

    return asyncio.run(drive())


@pytest.mark.parametrize("expect_100", [False, True])
@pytest.mark.parametrize("script", SCRIPTS)
def test_as_uvicorn_receives(script: list[tuple[Any, ...]], expect_100: bool) -> None:
    assert run(script, True, expect_100) == run(script, False, expect_100)


def test_a_lone_chunk_is_handed_out_as_it_came() -> None:
    async def drive() -> None:
        made = cycle()
        adopt(made)
        receive = made.receive
        chunk = b"x" * (HIGH_WATER_LIMIT * 4)
        on_body(made, chunk)
        assert made.transport.paused == [True]  # over the high-water mark, as uvicorn's
        message = await receive()
        assert message["body"] is chunk
        assert made.transport.paused == [True, False]
        assert isinstance(made.body, Arrival)
        assert len(made.body) == 0

    asyncio.run(drive())


def test_another_uvicorn_keeps_its_own_receive() -> None:
    made = cycle()
    own = made.receive
    assert not "0.0.1".startswith(COPIED_FROM)
    adopt(made, "0.0.1")
    assert made.receive == own
    assert isinstance(made.body, bytearray)
