"""The Chat Completions response as the API writes it: the JSON completion and its chunks.

Stream shape per docs/wire.md#openai-streams: bare `data:` chunks (object chat.completion.chunk), a
role chunk first, content or tool-call deltas, a final chunk with the finish reason, then —
only with stream_options.include_usage — one chunk with `choices: []` and the usage (every
other chunk then carries `"usage": null`), and `data: [DONE]`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.catalog.tokens import count_tokens
from gateway.emulator.openai.cache import CacheUsage
from gateway.emulator.reply import Reply

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
FINGERPRINT = "fp_emulator"


def usage_json(cache: CacheUsage, output_tokens: int, *, bills_writes: bool) -> dict[str, Any]:
    details: dict[str, int] = {"cached_tokens": cache.cached_tokens, "audio_tokens": 0}
    if bills_writes:
        details["cache_write_tokens"] = cache.cache_write_tokens
    return {
        "prompt_tokens": cache.prompt_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": cache.prompt_tokens + output_tokens,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def tool_call_id(block: dict[str, Any]) -> str:
    return "call_" + str(block["id"]).removeprefix("toolu_")


def completion_json(
    completion_id: str, model: str, created: int, reply: Reply, usage: dict[str, Any]
) -> dict[str, Any]:
    text = "".join(p.block["text"] for p in reply.blocks if p.block["type"] == "text")
    calls = [
        {
            "id": tool_call_id(p.block),
            "type": "function",
            "function": {
                "name": p.block["name"],
                "arguments": orjson.dumps(p.block["input"]).decode(),
            },
        }
        for p in reply.blocks
        if p.block["type"] == "tool_use"
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if calls else text,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS[reply.stop_reason],
            }
        ],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def stream_chunks(
    completion: dict[str, Any], reply: Reply, chars_per_token: float, *, include_usage: bool
) -> list[tuple[bytes, int]]:
    """The stream of a finished completion as (chunk bytes, output tokens it carries)."""
    head = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
        "service_tier": completion["service_tier"],
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        data: dict[str, Any] = {**head, "choices": [choice]}
        if include_usage:
            data["usage"] = None
        return b"data: " + orjson.dumps(data) + b"\n\n"

    calls = [p for p in reply.blocks if p.block["type"] == "tool_use"]
    first: dict[str, Any] = {"role": "assistant", "content": None if calls else "", "refusal": None}
    events = [(chunk(first), 0)]
    for index, part in enumerate(calls):
        opening = {
            "index": index,
            "id": tool_call_id(part.block),
            "type": "function",
            "function": {"name": part.block["name"], "arguments": ""},
        }
        events.append((chunk({"tool_calls": [opening]}), 0))
        for piece in part.pieces:
            delta = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            events.append((chunk(delta), count_tokens(piece, chars_per_token)))
    for part in reply.blocks:
        if part.block["type"] == "text":
            for piece in part.pieces:
                events.append((chunk({"content": piece}), count_tokens(piece, chars_per_token)))
    finish = completion["choices"][0]["finish_reason"]
    events.append((chunk({}, finish), 0))
    if include_usage:
        usage = {**head, "choices": [], "usage": completion["usage"]}
        events.append((b"data: " + orjson.dumps(usage) + b"\n\n", 0))
    events.append((b"data: [DONE]\n\n", 0))
    return events


def error_chunk(message: str, error_type: str = "server_error") -> bytes:
    """A mid-stream failure: the SDK raises on any chunk whose data holds `error`."""
    error = {"message": message, "type": error_type, "param": None, "code": None}
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
