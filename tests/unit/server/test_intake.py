"""Request bodies within their size, time and total limits (gateway/server/intake.py)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from gateway.errors import Overloaded, PayloadTooLarge, RequestTimeout
from gateway.server.intake import Intake


class Client:
    """An ASGI receive: the chunks given, then (if `withhold`) nothing ever again."""

    def __init__(self, *chunks: bytes, withhold: bool = False) -> None:
        self.chunks = list(chunks)
        self.withhold = withhold
        self.received = 0
        self.asked = asyncio.Event()

    async def __call__(self) -> Message:
        self.received += 1
        self.asked.set()
        if not self.chunks:
            await asyncio.Event().wait()  # a client that never sends its last byte
        chunk = self.chunks.pop(0)
        more = bool(self.chunks) or self.withhold
        return {"type": "http.request", "body": chunk, "more_body": more}


def length(size: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(size).encode())]


def test_a_body_arrives_whole() -> None:
    intake = Intake(100, 10.0, 1000)
    assert asyncio.run(intake.read(length(6), Client(b"abc", b"def"))) == b"abcdef"
    assert intake.incoming == 0


def test_a_declared_length_over_the_limit_is_refused_before_any_read() -> None:
    intake = Intake(100, 10.0)
    client = Client(b"x")
    with pytest.raises(PayloadTooLarge):
        asyncio.run(intake.read(length(10**12), client))
    assert client.received == 0


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives() -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(Intake(100, 10.0).read([], Client(b"x" * 60, b"x" * 60)))


def test_a_withheld_last_byte_times_out_and_releases_its_share() -> None:
    intake = Intake(1000, 0.05, 1000)
    with pytest.raises(RequestTimeout):
        asyncio.run(intake.read(length(100), Client(b"x" * 99, withhold=True)))
    assert intake.incoming == 0


def test_bodies_being_received_at_once_stay_within_the_total() -> None:
    async def run() -> None:
        intake = Intake(1000, 10.0, 1000)
        slow = Client(b"x" * 10, withhold=True)
        first = asyncio.create_task(intake.read(length(600), slow))
        await slow.asked.wait()
        assert intake.incoming == 600  # reserved by its declared length, not what arrived
        with pytest.raises(Overloaded):
            await intake.read(length(600), Client(b"y" * 600))
        with pytest.raises(Overloaded):  # no declared length: counted as it arrives
            await intake.read([], Client(b"y" * 300, b"y" * 300))
        assert intake.incoming == 600
        assert await intake.read(length(400), Client(b"z" * 400)) == b"z" * 400
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert intake.incoming == 0

    asyncio.run(run())


def test_a_body_the_server_holds_whole_is_taken_without_a_timer() -> None:
    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        timers = loop.call_at
        armed: list[float] = []

        def call_at(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
            armed.append(when)
            return timers(when, *args, **kwargs)  # type: ignore[arg-type]

        loop.call_at = call_at  # type: ignore[method-assign]
        body = await intake.read(length(6), Client(b"abcdef"), lambda: True)
        assert not armed
        return body

    intake = Intake(100, 10.0, 1000)
    assert asyncio.run(run()) == b"abcdef"
    assert intake.incoming == 0


def test_a_first_chunk_ready_then_a_withheld_last_byte_still_times_out() -> None:
    intake = Intake(1000, 0.05, 1000)
    ready = iter([True])
    client = Client(b"x" * 50, b"x" * 49, withhold=True)
    with pytest.raises(RequestTimeout):
        asyncio.run(intake.read(length(100), client, lambda: next(ready, False)))
    assert client.received == 3
    assert intake.incoming == 0


def test_a_ready_first_chunk_over_the_limit_is_refused() -> None:
    intake = Intake(100, 10.0, 1000)
    with pytest.raises(PayloadTooLarge):
        asyncio.run(intake.read([], Client(b"x" * 101), lambda: True))
    assert intake.incoming == 0
