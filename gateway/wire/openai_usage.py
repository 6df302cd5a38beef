"""Token usage out of OpenAI responses: Chat Completions and Responses, JSON bodies and streams.

Normalization (docs/wire.md#openai-usage): OpenAI's prompt_tokens / input_tokens include cached
and written tokens (disjoint sets); `Usage.input` is what is left. A chat stream reports usage
in one chunk with `choices: []` (only with stream_options.include_usage); a Responses
stream's tap is in responses_usage.py.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire import echoed
from gateway.wire.event_blocks import EventBlocks, block_at
from gateway.wire.sse import MAX_EVENT_BYTES, ServerSentEvent
from gateway.wire.usage import Reported, Usage

__all__ = [
    "ChatStreamUsage",
    "json_object",
    "response_object",
    "text_or_none",
    "usage_from_chat",
    "usage_from_chat_fields",
    "usage_from_response",
    "usage_from_response_fields",
]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _normalized(total: int, output: int, details: Any) -> Usage:
    details = details if isinstance(details, dict) else {}
    cached = _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens"))
    split = details.get("cache_write_tokens_details")
    long_lived = _int(split.get("ttl_12h_tokens")) if isinstance(split, dict) else 0
    return Usage(
        input=max(total - cached - written, 0),
        output=output,
        cache_read=cached,
        cache_write_5m=max(written - long_lived, 0),
        cache_write_1h=long_lived,
    )


def usage_from_chat_fields(usage: dict[str, Any]) -> Usage:
    """A Chat Completions `usage` object (CompletionUsage)."""
    return _normalized(
        _int(usage.get("prompt_tokens")),
        _int(usage.get("completion_tokens")),
        usage.get("prompt_tokens_details"),
    )


def usage_from_response_fields(usage: dict[str, Any]) -> Usage:
    """A Responses `usage` object (ResponseUsage)."""
    return _normalized(
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
        usage.get("input_tokens_details"),
    )


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def response_object(
    body: bytes, holder: echoed.Holder = echoed.response_holder
) -> dict[str, Any] | None:
    """`json_object` of a Responses object (or a stream event holding one), its echo of the
    request's tools parsed only if not seen before (echoed.py): it is never read."""
    try:
        parsed = echoed.loads(body, holder)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def usage_from_chat(body: bytes) -> Reported:
    """What a non-streaming chat completion reports; empty if it is not one."""
    completion = json_object(body)
    if completion is None or not isinstance(usage := completion.get("usage"), dict):
        return Reported()
    return Reported(
        text_or_none(completion.get("model")),
        usage_from_chat_fields(usage),
        text_or_none(completion.get("id")),
        service_tier=text_or_none(completion.get("service_tier")),
    )


def usage_from_response(body: bytes) -> Reported:
    """What a non-streaming Responses object reports; empty if it is not one."""
    response = response_object(body)
    if response is None or not isinstance(usage := response.get("usage"), dict):
        return Reported()
    return Reported(
        text_or_none(response.get("model")),
        usage_from_response_fields(usage),
        text_or_none(response.get("id")),
        service_tier=text_or_none(response.get("service_tier")),
    )


# A chunk whose bytes hold neither of these carries no usage and no error, so once the
# stream's id, model and first content are known it is not parsed at all.
_USAGE_OBJECT = '"usage":{'
_ERROR_KEY = '"error"'
# The same, to skip a whole one-event chunk before it is decoded.
_USAGE_BYTES, _ERROR_BYTES = _USAGE_OBJECT.encode(), _ERROR_KEY.encode()
_DATA, _DONE_BLOCK = b"data: ", b"data: [DONE]"
_MARKERS = (_USAGE_BYTES, _ERROR_BYTES, b"[DONE]")  # a block's data without them is skipped


class ChatStreamUsage(EventBlocks):
    """Watches a Chat Completions stream's bytes (bare `data:` chunks, then `data: [DONE]`).

    Same interface as the Anthropic StreamUsage: feed(bytes), then model, message_id, usage,
    saw_content, error_type, complete.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self.model: str | None = None
        self.message_id: str | None = None
        self.miss_reason: str | None = None  # OpenAI has no cache diagnostics on chat
        self.service_tier: str | None = None  # as served: every chunk says it
        self.usage: Usage | None = None
        self.error_type: str | None = None
        self.saw_content = False
        self.complete = False

    @property
    def settled(self) -> bool:
        return self.saw_content and self.model is not None

    def next_block(self, chunk: bytes, pos: int) -> int:
        """The next block that holds usage, an error or the end (a C search for each)."""
        found = -1
        for marker in _MARKERS:
            at = chunk.find(marker, pos)
            if at >= 0 and (found < 0 or at < found):
                found = at
        return -1 if found < 0 else block_at(chunk, pos, found)

    def block(self, block: bytes) -> None:
        if (
            self.settled
            and block.startswith(_DATA)
            and 0x0A not in block  # one data line: the block is that one chunk
            and block.find(_USAGE_BYTES) < 0
            and block.find(_ERROR_BYTES) < 0
            and block != _DONE_BLOCK
        ):
            return  # a content chunk, skipped below anyway: not decoded (~1 µs)
        self.read(block)

    def seen(self, kind: str, data: str) -> None:
        if (
            self.saw_content
            and self.model is not None
            and _USAGE_OBJECT not in data
            and _ERROR_KEY not in data
            and data != "[DONE]"
        ):
            return
        self._observe(data)

    def observe(self, event: ServerSentEvent) -> None:
        self._observe(event.data)

    def _observe(self, raw: str) -> None:
        if raw == "[DONE]":
            self.complete = True
            return
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        if isinstance(error := data.get("error"), dict):
            self.error_type = (
                text_or_none(error.get("type")) or text_or_none(error.get("code")) or "error"
            )
            return
        self.model = self.model or text_or_none(data.get("model"))
        self.message_id = self.message_id or text_or_none(data.get("id"))
        self.service_tier = text_or_none(data.get("service_tier")) or self.service_tier
        if isinstance(usage := data.get("usage"), dict):
            self.usage = usage_from_chat_fields(usage)
        if not self.saw_content:
            self.saw_content = any(_has_content(choice) for choice in data.get("choices") or ())

    @property
    def usage_final(self) -> bool:
        """The stream's usage chunk seen: only the last one carries usage."""
        return self.usage is not None


def _has_content(choice: Any) -> bool:
    delta = choice.get("delta") if isinstance(choice, dict) else None
    if not isinstance(delta, dict):
        return False
    return bool(delta.get("content") or delta.get("tool_calls") or delta.get("refusal"))
