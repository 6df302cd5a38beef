"""A stream tap's walk over whole LF events (SSEDecoder.aligned): block by block until the
tap is settled, then only the blocks it watches for, found by a C search. A chunk that ends
within an event is read up to its last whole event and the rest held for the next chunk; the
rest of a stream (CR line ends, an event over the cap) goes through the decoder (sse.py)."""

from __future__ import annotations

import re

from gateway.wire.sse import ServerSentEvent, SSEDecoder

__all__ = ["EventBlocks", "block_at", "block_end", "event_lines", "events_end", "simple_event"]


_SHORT_BLOCK = 512  # a block's first bytes searched for its end as a whole


class EventBlocks:
    """A stream tap that reads whole events (SSEDecoder.aligned) block by block until it is
    `settled`, then only the blocks `next_block` finds: what it still watches for. A stream
    with CR line ends, or an event over the cap, goes through the decoder. A tap says what it
    does with an event (`seen`), when it is settled, and which blocks it skips (`block`)."""

    watched: re.Pattern[bytes]  # the lines the default `next_block` looks for (event_lines)

    def __init__(self, max_event_bytes: int) -> None:
        self.decoder = SSEDecoder(max_event_bytes)
        self._max = max_event_bytes
        self._tail: list[bytes] = []  # the start of an event a chunk ended in, not read yet
        self._held = 0  # its bytes

    @property
    def settled(self) -> bool:
        """From here on, only the blocks `next_block` finds need reading."""
        raise NotImplementedError

    def seen(self, kind: str, data: str) -> None:
        """One event: its type and its data."""
        raise NotImplementedError

    def feed(self, chunk: bytes) -> None:
        """A chunk that ends within an event (a read of a size, not an event at a time) is
        read up to its last whole event; the rest, held as bytes (at most the cap), goes in
        front of the next chunk. The decoder, which would decode and split every line, has
        a chunk only when the stream is not aligned: CR line ends, or an event over the cap.
        Either way an event is read in the feed that completes it, as the decoder dispatches
        it, so the first token is seen in the same feed."""
        if not chunk:
            return
        tail = self._tail
        if tail:
            # Joined only once an event ends: a long event's pieces are not copied each feed.
            ends = events_end(chunk) or (chunk[:1] == b"\n" and tail[-1][-1] == 0x0A)
            tail.append(chunk)
            self._held += len(chunk)
            if not ends:
                if self._held <= self._max and 0x0D not in chunk:
                    return
                chunk = b"".join(tail)  # over the cap, or CR line ends: the decoder's
                tail.clear()
                self._decode(chunk)
                return
            chunk = b"".join(tail)
            tail.clear()
        end = len(chunk) if chunk[-2:] == b"\n\n" else events_end(chunk)
        if len(chunk) - end <= self._max and 0x0D not in chunk and self.decoder.at_event(chunk):
            if end < len(chunk):
                tail.append(chunk[end:])
                self._held = len(chunk) - end
            if end:
                self.blocks(chunk, end)
            return
        self._decode(chunk)

    def _decode(self, chunk: bytes) -> None:
        """CR line ends, or an event over the cap: the decoder reads every line."""
        for event in self.decoder.feed(chunk):
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

    def blocks(self, chunk: bytes, stop: int) -> None:
        """The blocks of `chunk[:stop]`, whole events from where the decoder stands."""
        pos = 0
        while pos < stop - 1:  # a last LF alone is an empty line: no event
            if pos and self.settled:
                pos = self.next_block(chunk, pos)
                if not 0 <= pos < stop - 1:
                    return
            end = chunk.find(b"\n\n", pos, pos + _SHORT_BLOCK)  # most blocks are short
            if end < 0:
                end = block_end(chunk, pos)
            self.block(chunk[pos:end])
            pos = end + 2


def events_end(chunk: bytes) -> int:
    """Where the chunk's last whole event ends (after its blank line); 0: none ends in it.
    A search for LF (memrchr) and a look at the byte before: a search for LF LF is not a
    memchr, and costs ~2 instructions a byte of a 19 KB event."""
    at = len(chunk)
    while (at := chunk.rfind(b"\n", 0, at)) > 0:
        if chunk[at - 1] == 0x0A:
            return at + 1
    return 0


def block_end(chunk: bytes, pos: int) -> int:
    """Where the block at `pos` ends (the first LF of its blank line), in a chunk of whole
    LF events: line by line, each line's end found by memchr (a search for LF LF is not a
    memchr: ~2 instructions a byte)."""
    at = chunk.find(b"\n", pos)
    while chunk[at + 1] != 0x0A:
        at = chunk.find(b"\n", at + 1)
    return at


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
        start = block.find(b"\n") + 1
        if not start:
            return None
        kind = block[7 : start - 1].decode("utf-8", "replace") or "message"
    else:
        kind, start = "message", 0
    if not block.startswith(b"data:", start) or block.find(b"\n", start) >= 0:
        return None
    start += 6 if block[start + 5 : start + 6] == b" " else 5
    text = block[start:].decode("utf-8", "replace")  # one copy of a long line, not three
    if len(text) + 1 > max_event_bytes:
        return None  # the decoder skips it
    return kind, text
