"""Token usage out of Anthropic responses: a JSON message, or a stream's events as they pass.

Stream usage is cumulative (../shared/WIRE.md A.5): take message_start's input side, then
the last value of each field any message_delta carries; never add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.wire.sse import ServerSentEvent, SSEDecoder


@dataclass(frozen=True, slots=True)
class Usage:
    """Normalized token counts: `input` never includes cached tokens."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    def by_type(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write_5m": self.cache_write_5m,
            "cache_write_1h": self.cache_write_1h,
        }


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


def usage_from_message(body: bytes) -> tuple[str | None, Usage | None]:
    """(model, usage) of a non-streaming response body; (None, None) if it has none."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return None, None
    return message.get("model"), usage_from_fields(message["usage"])


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
