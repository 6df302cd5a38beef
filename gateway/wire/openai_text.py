"""The text an OpenAI response gave: Chat Completions and Responses, JSON or streamed.

Used only for calls the gateway compares offline (shadow pairs), like anthropic_text; the
relay's hot path never decodes every chunk.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.sse import MAX_EVENT_BYTES, SSEDecoder


def _loads(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _tool_call(name: Any, arguments: Any) -> str:
    return orjson.dumps({"tool_use": name, "input": arguments}).decode()


def chat_text(body: bytes) -> str:
    """The first choice's content, tool calls as their name and arguments."""
    completion = _loads(body)
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return ""
    parts = [message.get("content") or ""]
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(_tool_call(function.get("name"), function.get("arguments")))
    return "".join(str(part) for part in parts)


def response_text(body: bytes) -> str:
    """The output's text parts, function calls as their name and arguments."""
    response = _loads(body)
    output = response.get("output") if isinstance(response, dict) else None
    if not isinstance(output, list):
        return ""
    parts: list[str] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            parts.append(_tool_call(item.get("name"), item.get("arguments")))
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") == "output_text":
                parts.append(str(part.get("text", "")))
    return "".join(parts)


class ChatStreamText:
    """Collects a chat stream's content and tool-argument deltas as they pass."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._decoder = SSEDecoder(max_event_bytes)
        self._parts: list[str] = []

    def feed(self, chunk: bytes) -> None:
        for event in self._decoder.feed(chunk):
            data = _loads(event.data)
            for choice in (data.get("choices") if isinstance(data, dict) else None) or ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if not isinstance(delta, dict):
                    continue
                self._parts.append(str(delta.get("content") or ""))
                for call in delta.get("tool_calls") or ():
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict):
                        self._parts.append(str(function.get("arguments") or ""))

    @property
    def text(self) -> str:
        return "".join(self._parts)


class ResponsesStreamText:
    """Collects a Responses stream's text and function-argument deltas."""

    _DELTAS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._decoder = SSEDecoder(max_event_bytes)
        self._parts: list[str] = []

    def feed(self, chunk: bytes) -> None:
        for event in self._decoder.feed(chunk):
            if event.event in self._DELTAS:
                data = _loads(event.data)
                if isinstance(data, dict):
                    self._parts.append(str(data.get("delta") or ""))

    @property
    def text(self) -> str:
        return "".join(self._parts)
