"""A request body's chunks as httptools hands them, kept as they are until the app receives
them: the same messages uvicorn's httptools cycle gives, with fewer copies of the body.

uvicorn appends each chunk to a `bytearray` as it arrives (a copy) and hands the app
`bytes(...)` of it (another). Here the chunks are kept in a list (`Arrival`, which takes
uvicorn's `+=` and `len` in its `on_body`, so the flow control reads the same size), and
`receive` hands out the one chunk as it is, or the chunks joined once. A chunk is a `bytes`
httptools made for the callback, so no one else holds or changes it.
"""

from __future__ import annotations

from typing import Any


class Arrival:
    """The chunks of the body received and not yet handed to the app, and their size."""

    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def __iadd__(self, chunk: bytes) -> Arrival:
        self.chunks.append(chunk)
        self.size += len(chunk)
        return self

    def __len__(self) -> int:
        return self.size

    def joined(self) -> bytes:
        return b"".join(self.chunks)  # one chunk (of type bytes) is returned as it is


async def receive(cycle: Any) -> dict[str, Any]:
    """`RequestResponseCycle.receive()` for `cycle` (uvicorn 0.54's, cycle.py's `COPIED_FROM`,
    line for line but for the body's buffer)."""
    if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
        cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        cycle.waiting_for_100_continue = False

    if not cycle.disconnected and not cycle.response_complete:
        cycle.flow.resume_reading()
        await cycle.message_event.wait()
        cycle.message_event.clear()

    if cycle.disconnected or cycle.response_complete:
        return {"type": "http.disconnect"}
    body: Arrival = cycle.body
    cycle.body = Arrival()
    return {"type": "http.request", "body": body.joined(), "more_body": cycle.more_body}
