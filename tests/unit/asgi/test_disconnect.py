"""The disconnect watch told by the server's callback: no task waits on `receive`."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from gateway.asgi.disconnect import WATCH_EXTENSION, DisconnectWatch, Watching


class Request:
    response_complete = False


async def never() -> Message:
    raise AssertionError("the watch reads nothing when the server tells it")


def watched(watching: Watching, request: Request) -> dict[str, object]:
    watcher = watching.watcher(lambda: request.response_complete)
    return {"extensions": {WATCH_EXTENSION: watcher}}


def test_a_lost_connection_cancels_the_block_and_the_watch_swallows_it() -> None:
    async def go() -> tuple[bool, bool]:
        resumed: list[None] = []
        watching = Watching(lambda: resumed.append(None))
        reached_end = False
        async with DisconnectWatch(never, watched(watching, Request())) as watch:
            asyncio.get_running_loop().call_soon(watching.lost)
            await asyncio.sleep(3600)
            reached_end = True
        return watch.client_left and bool(resumed), reached_end

    assert asyncio.run(go()) == (True, False)


def test_once_disarmed_or_complete_a_lost_connection_cancels_nothing() -> None:
    async def go() -> bool:
        watching = Watching(lambda: None)
        async with DisconnectWatch(never, watched(watching, Request())) as watch:
            watch.disarm()
            watching.lost()
            await asyncio.sleep(0)
        complete, watching = Request(), Watching(lambda: None)
        async with DisconnectWatch(never, watched(watching, complete)) as other:
            complete.response_complete = True
            watching.lost()
            await asyncio.sleep(0)
        return watch.client_left or other.client_left

    assert asyncio.run(go()) is False


def test_a_connection_lost_before_the_watch_is_set_cancels_the_block_on_entry() -> None:
    """The client left while the handler awaited something else (the key's admission): the
    watch it sets afterwards is told at once, so nothing is sent upstream for it."""

    async def go() -> tuple[bool, bool]:
        watching = Watching(lambda: None)
        watching.lost()
        reached_end = False
        async with DisconnectWatch(never, watched(watching, Request())) as watch:
            await asyncio.sleep(10)  # without the fix: reached
            reached_end = True
        return watch.client_left, reached_end

    assert asyncio.run(go()) == (True, False)
