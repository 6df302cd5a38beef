"""Token usage out of Anthropic responses: a JSON message, or a stream's events as they pass.

Stream usage is cumulative (../shared/WIRE.md A.5): take message_start's input side, then
the last value of each field any message_delta carries; never add.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.sse import ServerSentEvent, SSEDecoder
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
    written = fields.get("cache_creation_input_tokens") or 0
    split = fields.get("cache_creation") or {}
    write_1h = split.get("ephemeral_1h_input_tokens") or 0
    # Without the split (older API versions) every write is a 5-minute write.
    write_5m = split.get("ephemeral_5m_input_tokens", written - write_1h) or 0
    return Usage(
        input=fields.get("input_tokens") or 0,
        output=fields.get("output_tokens") or 0,
        cache_read=fields.get("cache_read_input_tokens") or 0,
        cache_write_5m=write_5m,
        cache_write_1h=write_1h,
    )


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
        message.get("model"),
        usage_from_fields(message["usage"]),
        message.get("id"),
        miss_reason(message),
    )


# A chunk holding exactly one whole event of these kinds carries no usage: the tap only
# notes it. Most of a stream's chunks are such deltas, and decoding each costs ~5 µs.
CONTENT_DELTA = b"event: content_block_delta\n"
PING = b"event: ping\n"


class StreamUsage:
    """Watches a Messages stream's bytes; only the few events that carry usage are parsed."""

    def __init__(self) -> None:
        self.decoder = SSEDecoder()
        self.fields: dict[str, Any] = {}
        self.model: str | None = None
        self.message_id: str | None = None
        self.miss_reason: str | None = None
        self.error_type: str | None = None
        self.saw_content = False
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        if (
            chunk.startswith((CONTENT_DELTA, PING))
            and chunk.endswith(b"\n\n")
            and chunk.find(b"\n\n") == len(chunk) - 2
            and self.decoder.between_events
        ):
            self.saw_content = self.saw_content or chunk.startswith(CONTENT_DELTA)
            return
        for event in self.decoder.feed(chunk):
            self.observe(event)

    def observe(self, event: ServerSentEvent) -> None:
        kind = event.event
        if kind == "content_block_delta":
            self.saw_content = True
        elif kind == "message_start":
            message = orjson.loads(event.data).get("message") or {}
            self.model = message.get("model")
            self.message_id = message.get("id")
            self.miss_reason = miss_reason(message)
            self.fields.update(message.get("usage") or {})
        elif kind == "message_delta":
            self.fields.update(orjson.loads(event.data).get("usage") or {})
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.error_type = (orjson.loads(event.data).get("error") or {}).get("type", "error")

    @property
    def usage(self) -> Usage | None:
        return usage_from_fields(self.fields) if self.fields else None
