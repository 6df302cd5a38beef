"""The Messages response as the API writes it: the JSON message and the SSE event sequence.

Event order per docs/wire.md#anthropic-streams: message_start (input-side usage), per block
content_block_start / deltas / content_block_stop (a ping after the first start),
message_delta (cumulative usage), message_stop.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.catalog.tokens import count_tokens
from gateway.emulator.anthropic.cache import CacheUsage
from gateway.emulator.reply import Reply, ReplyBlock
from gateway.wire.sse import encode_event

CUMULATIVE_USAGE = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


def usage_json(cache: CacheUsage, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": cache.input_tokens,
        "cache_creation_input_tokens": cache.cache_creation_input_tokens,
        "cache_read_input_tokens": cache.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.cache_creation_5m,
            "ephemeral_1h_input_tokens": cache.cache_creation_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_json(
    message_id: str,
    model: str,
    reply: Reply,
    usage: dict[str, Any],
    diagnostics: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [part.block for part in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "stop_details": None,
        "container": None,
        "diagnostics": diagnostics,
        "usage": usage,
    }


def stream_events(
    message: dict[str, Any], reply: Reply, chars_per_token: float
) -> list[tuple[bytes, int]]:
    """The stream of a finished message as (event bytes, output tokens it carries)."""
    start_usage = {**message["usage"], "output_tokens": 1}
    head = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [(_event("message_start", {"type": "message_start", "message": head}), 0)]
    for index, part in enumerate(reply.blocks):
        events.append((_event("content_block_start", _block_start(index, part)), 0))
        if index == 0:
            events.append((_event("ping", {"type": "ping"}), 0))
        for piece in part.pieces:
            delta = _delta(index, part.block["type"], piece)
            events.append(
                (_event("content_block_delta", delta), count_tokens(piece, chars_per_token))
            )
        events.append(
            (_event("content_block_stop", {"type": "content_block_stop", "index": index}), 0)
        )
    delta_body = {
        "type": "message_delta",
        "delta": {key: message[key] for key in ("stop_reason", "stop_sequence")},
        "usage": {key: message["usage"][key] for key in CUMULATIVE_USAGE},
    }
    events.append((_event("message_delta", delta_body), 0))
    events.append((_event("message_stop", {"type": "message_stop"}), 0))
    return events


def _block_start(index: int, part: ReplyBlock) -> dict[str, Any]:
    block = part.block
    if block["type"] == "tool_use":
        empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    else:
        empty = {"type": "text", "text": ""}
    return {"type": "content_block_start", "index": index, "content_block": empty}


def _delta(index: int, block_type: str, piece: str) -> dict[str, Any]:
    if block_type == "tool_use":
        delta = {"type": "input_json_delta", "partial_json": piece}
    else:
        delta = {"type": "text_delta", "text": piece}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(data).decode(), name)
