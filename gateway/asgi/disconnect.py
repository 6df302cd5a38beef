"""Noticing at once that an HTTP client has gone, wherever the handler is waiting.

uvicorn drops writes to a closed connection silently, so a handler that only sends would
learn nothing; this watches the ASGI `receive` channel for `http.disconnect` and cancels
the handler's task, so an upstream call or a paced stream stops with its client.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from starlette.types import Message, Receive


class DisconnectWatch:
    """Cancels the `async with` block if the client leaves while it runs.

    Call `disarm()` before the response's last message: once the response is complete,
    uvicorn reports a disconnect too, and that must not cancel the handler's last steps.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[object] | None = None
        self.client_left = False

    async def __aenter__(self) -> DisconnectWatch:
        self._owner = asyncio.current_task()
        self._task = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        message: Message = {"type": ""}
        while message["type"] != "http.disconnect":
            message = await self._receive()
        self.client_left = True
        if self._owner is not None:
            self._owner.cancel()

    def disarm(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._owner = None

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        owner = self._owner
        self.disarm()
        if kind is asyncio.CancelledError and self.client_left and owner is not None:
            owner.uncancel()
            return True  # our own cancellation: the client is gone, nothing more to do
        return False
