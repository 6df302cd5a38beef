"""Token usage out of OpenAI responses: Chat Completions and Responses, JSON bodies and streams.

Normalization (docs/wire.md#openai-usage): OpenAI's prompt_tokens / input_tokens include cached
and written tokens (disjoint sets); `Usage.input` is what is left. A chat stream reports usage
in one chunk with `choices: []` (only with stream_options.include_usage); a Responses
stream in the `response` of its closing event (completed, incomplete or failed).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.sse import MAX_EVENT_BYTES, ServerSentEvent, SSEDecoder
from gateway.wire.usage import Reported, Usage

__all__ = [
    "ChatStreamUsage",
    "ResponsesStreamUsage",
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


def _loads(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def usage_from_chat(body: bytes) -> Reported:
    """What a non-streaming chat completion reports; empty if it is not one."""
    completion = _loads(body)
    if completion is None or not isinstance(usage := completion.get("usage"), dict):
        return Reported()
    return Reported(
        _str(completion.get("model")),
        usage_from_chat_fields(usage),
        _str(completion.get("id")),
        service_tier=_str(completion.get("service_tier")),
    )


def usage_from_response(body: bytes) -> Reported:
    """What a non-streaming Responses object reports; empty if it is not one."""
    response = _loads(body)
    if response is None or not isinstance(usage := response.get("usage"), dict):
        return Reported()
    return Reported(
        _str(response.get("model")),
        usage_from_response_fields(usage),
        _str(response.get("id")),
        service_tier=_str(response.get("service_tier")),
    )


# A chunk whose bytes hold neither of these carries no usage and no error, so once the
# stream's id, model and first content are known it is not parsed at all.
_USAGE_OBJECT = '"usage":{'
_ERROR_KEY = '"error"'
# The same, to skip a whole one-event chunk before it is decoded.
_USAGE_BYTES, _ERROR_BYTES = _USAGE_OBJECT.encode(), _ERROR_KEY.encode()
_DATA, _DONE = b"data: ", b"data: [DONE]\n\n"


class ChatStreamUsage:
    """Watches a Chat Completions stream's bytes (bare `data:` chunks, then `data: [DONE]`).

    Same interface as the Anthropic StreamUsage: feed(bytes), then model, message_id, usage,
    saw_content, error_type, complete.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.decoder = SSEDecoder(max_event_bytes)
        self.model: str | None = None
        self.message_id: str | None = None
        self.miss_reason: str | None = None  # OpenAI has no cache diagnostics on chat
        self.service_tier: str | None = None  # as served: every chunk says it
        self.usage: Usage | None = None
        self.error_type: str | None = None
        self.saw_content = False
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        if (
            self.saw_content
            and self.model is not None
            and chunk.startswith(_DATA)
            and chunk.count(b"\n") == 2
            and chunk.endswith(b"\n\n")
            and _USAGE_BYTES not in chunk
            and _ERROR_BYTES not in chunk
            and chunk != _DONE
            and b"\r" not in chunk
            and self.decoder.between_events
        ):
            return  # one whole content chunk, skipped below anyway: not decoded (~1 µs)
        for event in self.decoder.feed(chunk):
            settled = self.saw_content and self.model is not None
            data = event.data
            if (
                settled
                and _USAGE_OBJECT not in data
                and _ERROR_KEY not in data
                and data != "[DONE]"
            ):
                continue
            self.observe(event)

    def observe(self, event: ServerSentEvent) -> None:
        if event.data == "[DONE]":
            self.complete = True
            return
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        if isinstance(error := data.get("error"), dict):
            self.error_type = _str(error.get("type")) or _str(error.get("code")) or "error"
            return
        self.model = self.model or _str(data.get("model"))
        self.message_id = self.message_id or _str(data.get("id"))
        self.service_tier = _str(data.get("service_tier")) or self.service_tier
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


# Events that end a Responses stream and carry the whole response, usage included.
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_CONTENT_SUFFIXES = (".delta",)
_NAMED = ("model", "id", "service_tier")  # what a response object says of itself
_WATCHED = frozenset({"response.created", *_FINAL_EVENTS, "error"})  # read past their name
_EVENT = b"event: "


class ResponsesStreamUsage:
    """Watches a Responses stream (`event: <type>` blocks); parses only the few that matter.

    `response.created` repeats the request's tools and instructions (19 KB on a recorded
    Codex turn: a 16 µs parse), and the final event says again what it tells (model, id,
    tier): it is parsed only if one of those is read before a final event gives them.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.decoder = SSEDecoder(max_event_bytes)
        self._model: str | None = None
        self._message_id: str | None = None  # the response id, resp_…
        self._service_tier: str | None = None
        self._head: str | None = None  # response.created's data, not parsed yet
        self.miss_reason: str | None = None
        self.usage: Usage | None = None
        self.error_type: str | None = None
        self.saw_content = False
        self.complete = False

    @property
    def model(self) -> str | None:
        self._read_head()
        return self._model

    @model.setter
    def model(self, value: str | None) -> None:
        self._model = value

    @property
    def message_id(self) -> str | None:
        self._read_head()
        return self._message_id

    @message_id.setter
    def message_id(self, value: str | None) -> None:
        self._message_id = value

    @property
    def service_tier(self) -> str | None:
        self._read_head()
        return self._service_tier

    @service_tier.setter
    def service_tier(self, value: str | None) -> None:
        self._service_tier = value

    def feed(self, chunk: bytes) -> None:
        # A chunk that is one whole event of one name line and one data line (as a stream
        # comes: an event per write) is known by its name: most are not read further.
        # Decoding one costs 2 µs, 8 µs for response.in_progress (it repeats the request's
        # tools and instructions, as response.created does).
        if chunk.startswith(_EVENT) and self.decoder.between_events:
            kind = chunk[len(_EVENT) : chunk.find(b"\n")].decode("utf-8", "replace")
            if (
                kind not in _WATCHED
                and chunk.count(b"\n") == 3
                and chunk.endswith(b"\n\n")
                and b"\r" not in chunk
            ):
                self.saw_content = self.saw_content or kind.endswith(_CONTENT_SUFFIXES)
                return
        for event in self.decoder.feed(chunk):
            self.observe(event)

    def observe(self, event: ServerSentEvent) -> None:
        kind = event.event
        if kind.endswith(_CONTENT_SUFFIXES):
            # output_text, function_call_arguments, reasoning…: the first token the model made.
            self.saw_content = True
        elif kind == "response.created":
            self._read_head()  # another one before: what it said stands where this is silent
            self._head = event.data
        elif kind in _FINAL_EVENTS:
            self._final(event.data)
            if kind == "response.failed" and self.error_type is None:
                self.error_type = "response_failed"
        elif kind == "error":
            data = _loads(event.data.encode()) or {}
            self.error_type = _str(data.get("code")) or "error"

    def _read_head(self) -> None:
        head, self._head = self._head, None
        if head is not None and (response := _response_of(head)) is not None:
            self._take(response)

    def _take(self, response: dict[str, Any]) -> None:
        """The response's model, id and tier, where it gives them."""
        self._model = _str(response.get("model")) or self._model
        self._message_id = _str(response.get("id")) or self._message_id
        self._service_tier = _str(response.get("service_tier")) or self._service_tier

    def _final(self, raw: str) -> None:
        response = _response_of(raw)
        if response is None:
            return
        if all(_str(response.get(name)) for name in _NAMED):
            self._head = None  # all the head would have said, said again
        else:
            self._read_head()
        self._take(response)
        self.complete = True
        if isinstance(usage := response.get("usage"), dict):
            self.usage = usage_from_response_fields(usage)
        error = response.get("error")
        if isinstance(error, dict):
            self.error_type = _str(error.get("code")) or "response_failed"

    @property
    def usage_final(self) -> bool:
        """The final response's usage seen (response.completed and its kin)."""
        return self.usage is not None


def _response_of(raw: str) -> dict[str, Any] | None:
    """An event's `response` object, if it has one."""
    response = (_loads(raw.encode()) or {}).get("response")
    return response if isinstance(response, dict) else None
