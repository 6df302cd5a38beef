"""Token usage out of Anthropic responses: a JSON message, or a stream's events as they pass.

Stream usage is cumulative (docs/wire.md#anthropic-streams): take message_start's input side, then
the last value of each field any message_delta carries; never add.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.event_blocks import EventBlocks, block_at, event_lines
from gateway.wire.sse import MAX_EVENT_BYTES
from gateway.wire.usage import Reported, Usage

# Usage and Reported are re-exported: callers written before they moved to wire/usage.py.
__all__ = [
    "Reported",
    "StreamUsage",
    "Usage",
    "miss_reason",
    "usage_from_fields",
    "usage_from_message",
]


def usage_from_fields(fields: dict[str, Any]) -> Usage:
    """Counts that are not non-negative integers (a damaged body) count as 0. Each is tested
    inline, not by a function call per field, which cost more than the test itself. Parsed
    JSON holds exact types: `type(value) is int` is a count (a bool is not one) in one test
    where `isinstance` took two."""
    get = fields.get
    written = get("cache_creation_input_tokens")
    written = written if type(written) is int and written > 0 else 0
    split = get("cache_creation")
    if isinstance(split, dict):
        write_1h = split.get("ephemeral_1h_input_tokens")
        write_1h = write_1h if type(write_1h) is int and write_1h > 0 else 0
        # Without the split (older API versions) every write is a 5-minute write.
        if "ephemeral_5m_input_tokens" in split:
            write_5m = split.get("ephemeral_5m_input_tokens")
            write_5m = write_5m if type(write_5m) is int and write_5m > 0 else 0
        else:
            write_5m = max(0, written - write_1h)
    else:
        write_1h, write_5m = 0, written
    tokens_in, tokens_out = get("input_tokens"), get("output_tokens")
    read = get("cache_read_input_tokens")
    return Usage(
        tokens_in if type(tokens_in) is int and tokens_in > 0 else 0,
        tokens_out if type(tokens_out) is int and tokens_out > 0 else 0,
        read if type(read) is int and read > 0 else 0,
        write_5m,
        write_1h,
    )


def _counts(usage: dict[str, Any]) -> dict[str, Any]:
    """The fields a later event may overwrite: counts and nested objects, nothing damaged."""
    return {
        name: value
        for name, value in usage.items()
        if type(value) is dict or (type(value) is int and value >= 0)
    }


def _object(data: str) -> dict[str, Any]:
    """An event's data as a JSON object; {} when it is not one (upstream bytes are untrusted)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _field(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def miss_reason(message: dict[str, Any]) -> str | None:
    diagnostics = message.get("diagnostics")
    reason = diagnostics.get("cache_miss_reason") if isinstance(diagnostics, dict) else None
    kind = reason.get("type") if isinstance(reason, dict) else None
    return kind if isinstance(kind, str) else None


def usage_from_message(body: bytes) -> Reported:
    """What a non-streaming response body reports; empty if it is not a message."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Reported()
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return Reported()
    return Reported(
        _text(message.get("model")),
        usage_from_fields(message["usage"]),
        _text(message.get("id")),
        miss_reason(message),
    )


# Events that carry no usage, known by their first line: the tap only notes a delta (the
# first token), and decodes none of them. Most of a stream's events are deltas.
CONTENT_DELTA = b"event: content_block_delta\n"
_PASSED = (
    CONTENT_DELTA,
    b"event: ping\n",
    b"event: content_block_start\n",
    b"event: content_block_stop\n",
)
# After the first token, the events still read: a C search finds them among the deltas.
_WATCHED = event_lines(("message_start", "message_delta", "message_stop", "error"))


class StreamUsage(EventBlocks):
    """Watches a Messages stream's bytes; only the few events that carry usage are parsed."""

    watched = _WATCHED

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self.fields: dict[str, Any] = {}
        self.model: str | None = None
        self.message_id: str | None = None
        self.miss_reason: str | None = None
        self.error_type: str | None = None
        self.saw_content = False
        self.complete = False
        self.usage_final = False  # a message_delta's usage seen: the output is counted
        self.service_tier: str | None = None  # OpenAI's tiers only: never set here

    @property
    def settled(self) -> bool:
        return self.saw_content

    def next_block(self, chunk: bytes, pos: int) -> int:
        """The default's answer (the block of the next `_WATCHED` line), found by two byte
        searches, for `message_` and `error` + LF, and the pattern matched only where they
        are: every watched line holds one of them 7 or 8 bytes after its line end. The
        pattern's own scan tries a match at every `event:` line (~8 instructions a byte, most
        of a settled stream's tap); the searches cost ~2 a byte each."""
        start = pos - 1
        message = chunk.find(b"message_", start)
        error = chunk.find(b"error\n", start)
        while True:  # the hits in order: the first whose line matches is the pattern's
            if message >= 0 and (error < 0 or message < error):
                hit = message
            elif error >= 0:
                hit = error
            else:
                return -1
            for line in (hit - 8, hit - 7):  # after `event: `, or `event:`
                if line >= start and _WATCHED.match(chunk, line) is not None:
                    return block_at(chunk, pos, line)
            if hit == message:
                message = chunk.find(b"message_", hit + 1)
            else:
                error = chunk.find(b"error\n", hit + 1)

    def block(self, block: bytes) -> None:
        # One line after an `event:` line of these: an event of that type, or, when that
        # line is not data, none at all; never one the tap reads.
        if block.startswith(_PASSED) and block.find(b"\n", block.find(b"\n") + 1) < 0:
            if block.startswith(CONTENT_DELTA):
                self.saw_content = True
            return
        self.read(block)

    def seen(self, kind: str, data: str) -> None:
        """Never raises: a damaged event is relayed as it came and simply not metered."""
        if kind == "content_block_delta":
            self.saw_content = True
        elif kind == "message_start":
            message = _field(_object(data), "message")
            self.model = _text(message.get("model"))
            self.message_id = _text(message.get("id"))
            self.miss_reason = miss_reason(message)
            self.fields.update(_counts(_field(message, "usage")))
        elif kind == "message_delta":
            usage = _field(_object(data), "usage")
            self.fields.update(_counts(usage))
            self.usage_final = self.usage_final or bool(usage)
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.error_type = _text(_field(_object(data), "error").get("type")) or "error"

    @property
    def usage(self) -> Usage | None:
        return usage_from_fields(self.fields) if self.fields else None
