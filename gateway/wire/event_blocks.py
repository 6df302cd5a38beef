"""A stream tap's walk over an aligned chunk of SSE (SSEDecoder.aligned): block by block until
the tap is settled, then only the blocks it watches for, found by a C search; the rest of a
stream (part of an event, CR line ends) goes through the decoder (sse.py)."""

from __future__ import annotations

import re

from gateway.wire.sse import ServerSentEvent, SSEDecoder

__all__ = ["EventBlocks", "block_at", "event_lines", "simple_event"]


class EventBlocks:
    """A stream tap that reads an aligned chunk (SSEDecoder.aligned) block by block until it
    is `settled`, then only the blocks `next_block` finds: what it still watches for. Any
    other chunk (part of an event, CR line ends) goes through the decoder. A tap says what it
    does with an event (`seen`), when it is settled, and which blocks it skips (`block`)."""

    watched: re.Pattern[bytes]  # the lines the default `next_block` looks for (event_lines)

    def __init__(self, max_event_bytes: int) -> None:
        self.decoder = SSEDecoder(max_event_bytes)
        self._max = max_event_bytes

    @property
    def settled(self) -> bool:
        """From here on, only the blocks `next_block` finds need reading."""
        raise NotImplementedError

    def seen(self, kind: str, data: str) -> None:
        """One event: its type and its data."""
        raise NotImplementedError

    def feed(self, chunk: bytes) -> None:
        if self.decoder.aligned(chunk):
            self.blocks(chunk)
            return
        for event in self.decoder.feed(chunk):  # part of an event, or CR line ends
            self.seen(event.event, event.data)

    def observe(self, event: ServerSentEvent) -> None:
        self.seen(event.event, event.data)

    def next_block(self, chunk: bytes, pos: int) -> int:
        """Where the next block worth reading starts, at or after `pos` (a block's start,
        past the first); -1: none. By default, the block of the next `watched` line."""
        found = self.watched.search(chunk, pos - 1)
        return -1 if found is None else block_at(chunk, pos, found.start())

    def block(self, block: bytes) -> None:
        """One block, without its blank line: a tap skips what it need not read, and
        `read`s the rest."""
        self.read(block)

    def read(self, block: bytes) -> None:
        """A block decoded: at once when it is one `data:` line (after an `event:` line),
        else by the decoder."""
        simple = simple_event(block, self._max)
        if simple is not None:
            self.seen(*simple)
            return
        for event in self.decoder.feed(block + b"\n\n"):
            self.seen(event.event, event.data)

    def blocks(self, chunk: bytes) -> None:
        pos, size = 0, len(chunk)
        while pos < size:
            if pos and self.settled:
                pos = self.next_block(chunk, pos)
                if pos < 0:
                    return
            end = chunk.find(b"\n\n", pos)
            self.block(chunk[pos:end])
            pos = end + 2


def event_lines(names: tuple[str, ...]) -> re.Pattern[bytes]:
    """Finds an `event:` line naming one of `names`, from the line end before it."""
    alternatives = b"|".join(re.escape(name.encode()) for name in names)
    return re.compile(rb"\nevent: ?(?:" + alternatives + rb")\n")


def block_at(chunk: bytes, pos: int, found: int) -> int:
    """The start of the block holding `found`, a position at or past `pos` (a block's start)."""
    return chunk.rfind(b"\n\n", max(pos - 2, 0), found + 1) + 2


def simple_event(block: bytes, max_event_bytes: int) -> tuple[str, str] | None:
    """(event type, data) of a block of `event: <type>` then one `data: ` line, or of the data
    line alone, as the decoder reads it; None for any other block (give it to the decoder)."""
    if block.startswith(b"event: "):
        end = block.find(b"\n")
        if end < 0:
            return None
        kind = block[7:end].decode("utf-8", "replace") or "message"
        line = block[end + 1 :]
    else:
        kind, line = "message", block
    if not line.startswith(b"data:") or 0x0A in line:
        return None
    data = line[6:] if line[5:6] == b" " else line[5:]
    text = data.decode("utf-8", "replace")
    if len(text) + 1 > max_event_bytes:
        return None  # the decoder skips it
    return kind, text
