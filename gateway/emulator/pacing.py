"""Sending an emulated response at the modelled pace, and counting streams still open.

A raw ASGI response rather than Starlette's StreamingResponse: it must know the moment a
stream ends, however it ends (finished, cut by fault injection, client gone), because
tests ask the emulator how many streams are still open, and it stops generating the
moment its client leaves, as the real API does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from gateway.asgi.disconnect import DisconnectWatch


class InjectedCut(Exception):
    """Raised mid-response to drop the connection, as a `cut` fault asks."""


@dataclass
class StreamCounter:
    open: int = 0
    total: int = 0


class PacedResponse:
    """Headers after `delay_s`, then each chunk after its own delay.

    With `cut_after`, the connection drops before that chunk (a `cut` fault).
    """

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        chunks: Sequence[tuple[bytes, float]],
        *,
        delay_s: float,
        counter: StreamCounter,
        cut_after: int | None = None,
    ) -> None:
        self.status = status
        self.headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        self.chunks = chunks
        self.delay_s = delay_s
        self.counter = counter
        self.cut_after = cut_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.counter.open += 1
        self.counter.total += 1
        try:
            async with DisconnectWatch(receive) as watch:
                if self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                start = {
                    "type": "http.response.start",
                    "status": self.status,
                    "headers": self.headers,
                }
                await send(start)
                for sent, (chunk, wait_s) in enumerate(self.chunks):
                    if sent == self.cut_after:
                        raise InjectedCut("emulator fault: connection cut mid-response")
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                watch.disarm()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.counter.open -= 1
