"""The call's deadline over one attempt: `asyncio.timeout_at`'s behaviour without its
async context manager (a Timeout, its state machine and two awaited methods per attempt):
one timer handle, cancelled when the attempt ends.

As asyncio's: when the deadline passes the task is cancelled; when the attempt then ends
in that CancelledError, and no other cancellation was asked for meanwhile, the deadline
is what ended it (`end` says so); otherwise the CancelledError is someone else's and goes on.
"""

from __future__ import annotations

import asyncio


class Expiry:
    __slots__ = ("_cancelling", "_handle", "_task", "expired")

    def __init__(self, at: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self.expired = False
        self._handle: asyncio.Handle | None = (
            loop.call_at(at, self._fire) if at > loop.time() else loop.call_soon(self._fire)
        )

    def _fire(self) -> None:
        self._task.cancel()
        self.expired = True
        self._handle = None  # the handle holds this method: no reference cycle is left

    def end(self, cancelled: bool) -> bool:
        """Stops the watch as the attempt ends (`cancelled`: in a CancelledError); whether
        the deadline is what ended it."""
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None
        if not self.expired:
            return False
        return self._task.uncancel() <= self._cancelling and cancelled
