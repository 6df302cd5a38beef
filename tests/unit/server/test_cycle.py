"""The request cycle's send (gateway/server/cycle.py) writes what uvicorn's writes, leaves the
cycle as uvicorn's leaves it, and raises uvicorn's errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.server.cycle import COPIED_FROM, send
from gateway.server.edge_cycle import EdgeCycle, adopt
from tests.support.transport import Transport


def cycle(method: str = "POST", keep_alive: bool = True, more_body: bool = False) -> Any:
    transport = Transport()
    made = RequestResponseCycle(
        scope={"method": method, "type": "http"},  # type: ignore[typeddict-item]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[(b"server", b"test")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )
    made.more_body = more_body
    return made


STATE = ("keep_alive", "chunked_encoding", "expected_content_length", "response_complete")


def run_both(messages: list[dict[str, Any]], **kwargs: Any) -> tuple[Any, Any]:
    """uvicorn's cycle and ours, each sent `messages`: (bytes, state, error) of each."""

    async def drive(ours: bool) -> Any:
        made = cycle(**kwargs)
        error = None
        try:
            for message in messages:
                if ours:
                    await send(made, message)
                else:
                    await made.send(message)
        except Exception as caught:  # compared below
            error = (type(caught), str(caught))
        state = tuple(getattr(made, name) for name in STATE)
        return b"".join(made.transport.written), state, made.transport.closed, error

    return asyncio.run(drive(False)), asyncio.run(drive(True))


def start(headers: list[tuple[bytes, bytes]], status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


PROVIDER = [
    (b"Content-Type", b"application/json"),
    (b"Anthropic-Ratelimit-Requests-Limit", b"4000"),
    (b"request-id", b"req_011CX"),
    (b"X-Gateway-Model", b"claude-\xe9"),
    (b"cf-ray", b"\tspaced value\t"),
]


@pytest.mark.parametrize(
    ("messages", "kwargs"),
    [
        ([start([*PROVIDER, (b"Content-Length", b"2")]), body(b"{}")], {}),
        ([start(PROVIDER), body(b"data: 1\n\n", True), body(b"")], {}),
        ([start(PROVIDER), body(b"a", True), body(b"b")], {}),
        ([start([*PROVIDER, (b"transfer-encoding", b"Chunked")]), body(b"x")], {}),
        ([start([(b"content-length", b"1"), (b"transfer-encoding", b"chunked")]), body(b"x")], {}),
        ([start([(b"content-length", b"1"), (b"content-length", b"x")]), body(b"x")], {}),
        ([start([(b"Connection", b"keep-alive, Close")]), body(b"")], {}),
        ([start([(b"connection", b"keep-alive")]), body(b"")], {"keep_alive": False}),
        ([start(PROVIDER), body(b"")], {"keep_alive": False}),
        ([start(PROVIDER, 204), body(b"")], {}),
        ([start(PROVIDER), body(b"")], {"method": "HEAD"}),
        ([start([]), body(b"")], {}),
        ([start([(b"", b"")]), body(b"")], {}),
        ([start([(b"content-length", b"3")]), body(b"four")], {}),
        ([start([(b"content-length", b"3")]), body(b"tw")], {}),
        ([start([(b"bad name", b"v")]), body(b"")], {}),
        ([start([(b"ok", b"v"), (b"bad:", b"v")]), body(b"")], {}),
        ([start([(b"ok", b"line\nbreak"), (b"bad name", b"v")]), body(b"")], {}),
        ([start([(b"ok", b"\x7f")]), body(b"")], {}),
        ([body(b"")], {}),
        ([start([]), start([])], {}),
        ([start([]), body(b""), body(b"")], {}),
    ],
)
def test_as_uvicorn_sends(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> None:
    theirs, ours = run_both(messages, **kwargs)
    assert ours == theirs


def test_a_response_before_the_body_is_read_says_close() -> None:
    theirs, ours = run_both([start(PROVIDER), body(b"")], more_body=True, keep_alive=False)
    assert ours == theirs
    assert b"\r\nconnection: close\r\n" in ours[0]
    assert ours[2]  # closed after it


def test_a_response_that_says_connection_itself_gets_no_second() -> None:
    theirs, ours = run_both([start([(b"Connection", b"close")]), body(b"")], more_body=True)
    assert ours == theirs
    assert ours[0].count(b"onnection") == 1


def test_every_byte_a_name_or_value_may_not_hold_is_refused() -> None:
    for byte in range(256):
        for headers in ([(bytes((byte,)), b"v")], [(b"n", bytes((byte,)))]):
            theirs, ours = run_both([start(headers), body(b"")])
            assert ours == theirs, (byte, headers)


def test_under_another_uvicorn_its_own_send_is_kept_and_still_closes_early() -> None:
    async def drive(version: str) -> bytes:
        made = cycle(more_body=True)
        adopt(made, version)
        for message in [start([(b"x-a", b"1")]), body(b"ok")]:
            await made.send(message)
        return b"".join(made.transport.written)

    copied, other = asyncio.run(drive(COPIED_FROM + "0")), asyncio.run(drive("9.0.0"))
    assert other == copied
    assert b"\r\nconnection: close\r\n" in other


def test_the_copy_is_chosen_only_under_the_uvicorn_it_copies() -> None:
    ours, theirs = cycle(), cycle()
    adopt(ours, COPIED_FROM + "3")
    adopt(theirs, "0.55.0")
    assert isinstance(ours, EdgeCycle)
    assert ours.send.__func__ is send
    assert not isinstance(theirs, EdgeCycle)
    assert isinstance(theirs, RequestResponseCycle)


def test_a_header_without_lower_before_the_body_is_read_leaves_the_response_unstarted() -> None:
    """The app's mistake is raised before the response starts, so uvicorn can still answer
    500 (a started response would only close the connection)."""

    async def drive() -> Any:
        made = cycle(more_body=True)
        with pytest.raises(AttributeError):
            await send(made, start([(None, b"v")]))  # type: ignore[list-item]
        return made.response_started

    assert asyncio.run(drive()) is False
