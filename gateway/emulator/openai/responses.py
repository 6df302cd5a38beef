"""The Responses API answer as it is written: the response object and its event stream.

Event order per docs/wire.md#openai-streams: response.created → response.in_progress → per output
item: output_item.added, (content_part.added → output_text.delta* → output_text.done →
content_part.done) or function_call_arguments.delta* → .done, output_item.done →
response.completed with the usage. Every event carries its sequence_number.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.catalog.tokens import count_tokens
from gateway.emulator.openai.cache import CacheUsage
from gateway.emulator.openai.reply_input import responses_tools
from gateway.emulator.reply import Reply, ReplyBlock
from gateway.wire.sse import encode_event

ECHOED = (
    "instructions", "metadata", "previous_response_id", "prompt_cache_key",
    "prompt_cache_retention", "safety_identifier", "temperature", "top_p", "user",
)  # fmt: skip


def usage_json(cache: CacheUsage, output_tokens: int, *, bills_writes: bool) -> dict[str, Any]:
    details: dict[str, Any] = {
        "cached_tokens": cache.cached_tokens,
        "cache_write_tokens": cache.cache_write_tokens,
    }
    if bills_writes:
        long = cache.cache_write_tokens if cache.long_ttl else 0
        details["cache_write_tokens_details"] = {
            "ttl_30m_tokens": cache.cache_write_tokens - long,
            "ttl_12h_tokens": long,
        }
    return {
        "input_tokens": cache.prompt_tokens,
        "input_tokens_details": details,
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": cache.prompt_tokens + output_tokens,
    }


def _item_id(prefix: str, response_id: str, index: int) -> str:
    digest = hashlib.blake2b(f"{response_id}/{index}".encode(), digest_size=12).hexdigest()
    return prefix + digest


def _item(
    response_id: str,
    index: int,
    part: ReplyBlock,
    status: str,
    tools: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    block = part.block
    if block["type"] == "tool_use":
        tool = tools.get(block["name"]) or {}
        call_id = "call_" + str(block["id"]).removeprefix("toolu_")
        if tool.get("type") == "custom":
            item: dict[str, Any] = {
                "type": "custom_tool_call",
                "id": _item_id("ctc_", response_id, index),
                "call_id": call_id,
                "name": block["name"],
                "input": str(block["input"].get("input", "")),
                "status": status,
            }
        else:
            item = {
                "type": "function_call",
                "id": _item_id("fc_", response_id, index),
                "call_id": call_id,
                "name": block["name"],
                "arguments": orjson.dumps(block["input"]).decode(),
                "status": status,
            }
        if tool.get("namespace") is not None:
            item["namespace"] = tool["namespace"]
        return item
    return {
        "type": "message",
        "id": _item_id("msg_", response_id, index),
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": block["text"], "annotations": [],
                     "logprobs": []}],
    }  # fmt: skip


def response_json(
    response_id: str,
    model: str,
    created: int,
    body: dict[str, Any],
    reply: Reply,
    usage: dict[str, Any],
) -> dict[str, Any]:
    incomplete = reply.stop_reason == "max_tokens"
    tools = responses_tools(body)
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": "incomplete" if incomplete else "completed",
        "completed_at": created,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "model": model,
        "output": [
            _item(response_id, i, p, "completed", tools) for i, p in enumerate(reply.blocks)
        ],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "max_output_tokens": body.get("max_output_tokens"),
        "store": body.get("store", True),
        "text": body.get("text") or {"format": {"type": "text"}},
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": "default",
        "truncation": "disabled",
        "usage": usage,
        **{key: body.get(key) for key in ECHOED},
    }


class _Events:
    def __init__(self) -> None:
        self.out: list[tuple[bytes, int]] = []

    def add(self, kind: str, data: dict[str, Any], tokens: int = 0) -> None:
        payload = {"type": kind, **data, "sequence_number": len(self.out)}
        self.out.append((encode_event(orjson.dumps(payload).decode(), kind), tokens))


def stream_events(
    response: dict[str, Any], body: dict[str, Any], reply: Reply, chars_per_token: float
) -> list[tuple[bytes, int]]:
    """The stream of a finished response as (event bytes, output tokens it carries)."""
    head = {**response, "status": "in_progress", "completed_at": None, "output": [],
            "incomplete_details": None, "usage": None}  # fmt: skip
    events = _Events()
    events.add("response.created", {"response": head})
    events.add("response.in_progress", {"response": head})
    rid = response["id"]
    tools = responses_tools(body)
    for index, part in enumerate(reply.blocks):
        item = _item(rid, index, part, "completed", tools)
        opened = {**item, "status": "in_progress"}
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "custom_tool_call":
            added = {"output_index": index, "item": {**opened, "input": ""}}
            events.add("response.output_item.added", added)
            tokens = count_tokens(item["input"], chars_per_token)
            events.add("response.custom_tool_call_input.delta", {**where, "delta": item["input"]},
                       tokens)  # fmt: skip
            events.add("response.custom_tool_call_input.done", {**where, "input": item["input"]})
        elif item["type"] == "function_call":
            added = {"output_index": index, "item": {**opened, "arguments": ""}}
            events.add("response.output_item.added", added)
            for piece in part.pieces:
                tokens = count_tokens(piece, chars_per_token)
                events.add("response.function_call_arguments.delta", {**where, "delta": piece},
                           tokens)  # fmt: skip
            events.add(
                "response.function_call_arguments.done",
                {**where, "name": item["name"], "arguments": item["arguments"]},
            )
        else:
            added = {"output_index": index, "item": {**opened, "content": []}}
            events.add("response.output_item.added", added)
            text_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            at = {**where, "content_index": 0}
            events.add("response.content_part.added", {**at, "part": text_part})
            for piece in part.pieces:
                tokens = count_tokens(piece, chars_per_token)
                events.add("response.output_text.delta", {**at, "delta": piece, "logprobs": []},
                           tokens)  # fmt: skip
            text = item["content"][0]["text"]
            events.add("response.output_text.done", {**at, "text": text, "logprobs": []})
            events.add("response.content_part.done", {**at, "part": item["content"][0]})
        events.add("response.output_item.done", {"output_index": index, "item": item})
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events.add(final, {"response": response})
    return events.out


def failed_events(
    events: list[tuple[bytes, int]], response: dict[str, Any], keep: int, message: str
) -> list[tuple[bytes, int]]:
    """A stream that fails after `keep` events: an `error` event, then response.failed."""
    out = _Events()
    out.out = list(events[:keep])
    out.add("error", {"code": "server_error", "message": message, "param": None})
    failed = {**response, "status": "failed", "output": [], "usage": None,
              "error": {"code": "server_error", "message": message}}  # fmt: skip
    out.add("response.failed", {"response": failed})
    return out.out
