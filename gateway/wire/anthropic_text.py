"""The text a Messages response gave: from a JSON message, or from a stream's deltas.

Used only for calls the gateway compares offline (shadow pairs); the relay's hot path
never decodes every event.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.sse import MAX_EVENT_BYTES, SSEDecoder


def message_text(body: bytes) -> str:
    """The concatenated text blocks of a message body (tool calls as their JSON input)."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return ""
    return "".join(_block_text(block) for block in content if isinstance(block, dict))


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_use":
        return orjson.dumps({"tool_use": block.get("name"), "input": block.get("input")}).decode()
    return ""


class StreamText:
    """Collects a stream's text and tool-input deltas as they pass."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._decoder = SSEDecoder(max_event_bytes)
        self._parts: list[str] = []

    def feed(self, chunk: bytes) -> None:
        for event in self._decoder.feed(chunk):
            if event.event != "content_block_delta":
                continue
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue  # a damaged event: relayed as it came, not collected
            delta = data.get("delta") if isinstance(data, dict) else None
            if isinstance(delta, dict):
                piece = delta.get("text") or delta.get("partial_json")
                self._parts.append(piece if isinstance(piece, str) else "")

    @property
    def text(self) -> str:
        return "".join(self._parts)
