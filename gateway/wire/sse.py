"""Server-Sent Events on the wire: an incremental, sans-IO decoder and a one-event encoder.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_EVENT_BYTES",
    "SSEDecoder",
    "ServerSentEvent",
    "encode_event",
]

# The most of one line, or of one event's fields, a decoder holds (providers.*.max_event_bytes).
MAX_EVENT_BYTES = 8 * 1024 * 1024
_BOM = "\ufeff".encode()


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    """The `event:` field, or "message" when the block had none (or an empty one)."""
    data: str
    """The block's `data:` lines joined with "\\n"."""
    id: str | None
    """The last event ID: like EventSource's `lastEventId` it persists across events until
    another `id:` field replaces it; None until the stream has sent one."""
    retry: int | None
    """The `retry:` value given in this event's own block, if any."""


class SSEDecoder:
    """Feed bytes in any chunking; get back the events they complete.

    Lines end at CRLF, CR or LF. A chunk is normalised to LF and only its complete lines are
    decoded, so a UTF-8 character split across chunks is decoded whole and an unterminated
    line costs one append, not a re-scan, on each later feed.

    Held bytes are bounded: an event whose line or fields grow past `max_event_bytes` is
    skipped whole (counted in `skipped`) and decoding resumes at the next event, so a stream
    with no line ends, or one endless event, never grows the decoder past the cap.
    """

    __slots__ = (
        "_after_cr", "_data", "_event", "_held", "_last_id", "_long_line", "_max",
        "_partial", "_retry", "_skipping", "_started", "skipped",
    )  # fmt: skip

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._held = 0  # bytes of the current event's fields
        self._skipping = False  # the current event went over the cap: its lines are dropped
        self._long_line = False  # ...and the line that took it over has not ended yet
        self.skipped = 0  # events dropped for their size
        self._partial = bytearray()  # the current unterminated line
        self._after_cr = False  # the last chunk ended in CR: a leading LF belongs to it
        self._started = False  # the BOM may only be stripped at the very start
        self._data: list[str] = []
        self._event = ""
        self._retry: int | None = None
        self._last_id: str | None = None

    @property
    def held_bytes(self) -> int:
        """What the decoder holds of the current line and event: at most the cap plus a chunk."""
        return len(self._partial) + self._held

    @property
    def between_events(self) -> bool:
        """Nothing is pending: the next byte starts a new line of a new event."""
        return self.idle and self._started

    def aligned(self, chunk: bytes) -> bool:
        """The chunk holds whole events with LF line ends, from where this decoder stands
        between two events. Then its blocks (`EventBlocks`) may each be decoded alone, as
        `feed(block + b"\\n\\n")`, or passed over, and the events are those `feed(chunk)`
        would give (a block passed over leaves its `id:` untold: no tap reads it). This is
        how a tap reads the few events it needs out of a chunk of many without a Python
        loop over every line."""
        # (`0x0D in` is a memchr; `b"\\r" in` first tries the needle as an int, and pays for
        # formatting the TypeError it catches: ten times as much.)
        return chunk[-2:] == b"\n\n" and 0x0D not in chunk and self.at_event(chunk)

    def at_event(self, chunk: bytes) -> bool:
        """The decoder holds nothing, so `chunk`, fed next, starts a line of a new event; at
        the stream's start, only if it does not start with a BOM (or what may be one)."""
        if (
            self._partial
            or self._after_cr
            or self._data
            or self._event
            or self._retry is not None
            or self._skipping
        ):
            return False  # (not `self.idle`: a call less a feed)
        if not self._started:
            if _BOM.startswith(chunk[:3]):
                return False
            self._started = True  # as the first line would: no BOM to strip
        return True

    @property
    def idle(self) -> bool:
        """The decoder holds nothing: what it is fed next starts a line of a new event (or,
        before the first byte, the stream)."""
        return not (
            self._partial
            or self._after_cr
            or self._data
            or self._event
            or self._retry is not None
            or self._skipping
        )

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if not chunk:
            return []
        if self._after_cr:
            self._after_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if 0x0D in chunk:  # rare in practice: skip both scans of replace() for LF streams
            self._after_cr = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            if not self._long_line:
                self._partial += chunk
                if len(self._partial) + self._held > self._max:
                    self._skip(mid_line=True)
            return []
        if self._long_line:
            # The rest of the overlong line is dropped; complete lines after it are decoded
            # (and dropped too, up to the empty line that ends the skipped event).
            self._long_line = False
            self._started = True
            first = chunk.find(b"\n")
            self._partial = bytearray(chunk[end + 1 :])
            if first == end:
                return []
            text = chunk[first + 1 : end].decode("utf-8", "replace")
        elif self._partial:
            self._partial += chunk[:end]
            text = self._partial.decode("utf-8", "replace")
            self._partial = bytearray(chunk[end + 1 :])
        else:
            text = chunk[:end].decode("utf-8", "replace")
            self._partial += chunk[end + 1 :]
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        # str.split("\n") splits on LF only; splitlines() would also break on U+2028, NEL, etc.
        return self._lines(text.split("\n"))

    def flush(self) -> list[ServerSentEvent]:
        """End of stream. Per the spec an event not closed by an empty line is discarded, as is
        an unterminated last line, so this never dispatches; it returns [] for symmetry with
        `feed`. The decoder is then ready for a new stream (a reconnection) and, as
        EventSource does, keeps the last event ID."""
        self._partial.clear()
        self._after_cr = self._started = False
        self._skipping = self._long_line = False
        self._data, self._event, self._retry, self._held = [], "", None, 0
        return []

    def _skip(self, *, mid_line: bool = False) -> None:
        """The current event is over the cap: drop what it holds, and its lines to come."""
        self._skipping = True
        self._long_line = mid_line
        self.skipped += 1
        self._partial = bytearray()
        self._data, self._event, self._retry, self._held = [], "", None, 0

    def _lines(self, lines: list[str]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        for line in lines:
            if self._skipping:
                self._skipping = bool(line)  # the skipped event ends at its empty line
                continue
            if not line:
                # An empty `data:` still counts: the spec's buffer is then "\n", not empty.
                if self._data:
                    events.append(
                        ServerSentEvent(
                            self._event or "message",
                            "\n".join(self._data),
                            self._last_id,
                            self._retry,
                        )
                    )
                    self._data = []
                self._event, self._retry, self._held = "", None, 0
                continue
            # A comment (":" first) parses as the empty field name: ignored like any unknown field.
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._held += len(value) + 1
                if self._held > self._max:
                    self._skip()
                    continue
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._last_id = value
            # isdigit() alone would accept non-ASCII digits such as "²"; the length cap keeps
            # int() under CPython's 4300-digit limit, where it would raise.
            elif name == "retry" and value.isascii() and value.isdigit() and len(value) < 4300:
                self._retry = int(value)
        return events


def encode_event(data: str, event: str | None = None) -> bytes:
    """One event block. Each line of `data` (split at CRLF, CR or LF) gets its own `data:`
    field, so decoding yields `data` with its line ends normalised to LF."""
    parts: list[str] = []
    if event is not None:
        if "\r" in event or "\n" in event:
            raise ValueError(f"SSE event name must be one line: {event!r}")
        parts.append(f"event: {event}\n")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode()
