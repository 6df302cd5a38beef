"""Token usage out of a Responses stream (`event: <type>` blocks), watched as it passes:
the usage is in the `response` of its closing event (completed, incomplete or failed)."""

from __future__ import annotations

from typing import Any

from gateway.wire import echoed
from gateway.wire.event_blocks import EventBlocks, event_lines
from gateway.wire.openai_usage import (
    json_object,
    response_object,
    text_or_none,
    usage_from_response_fields,
)
from gateway.wire.sse import MAX_EVENT_BYTES
from gateway.wire.usage import Usage

# Events that end a Responses stream and carry the whole response, usage included.
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_CONTENT_SUFFIXES = (".delta",)
_NAMED = ("model", "id", "service_tier")  # what a response object says of itself
_WATCHED = frozenset({"response.created", *_FINAL_EVENTS, "error"})  # read past their name
_EVENT = b"event: "
_WATCHED_LINES = event_lines(tuple(sorted(_WATCHED)))  # what is read after the first token


class ResponsesStreamUsage(EventBlocks):
    """Watches a Responses stream (`event: <type>` blocks); parses only the few that matter.

    `response.created` repeats the request's tools and instructions (19 KB on a recorded
    Codex turn: a 16 µs parse), and the final event says again what it tells (model, id,
    tier): it is parsed only if one of those is read before a final event gives them.
    """

    watched = _WATCHED_LINES

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        super().__init__(max_event_bytes)
        self._model: str | None = None
        self._message_id: str | None = None  # the response id, resp_…
        self._service_tier: str | None = None
        self._head: str | bytes | None = None  # response.created's data, not parsed yet
        self.miss_reason: str | None = None
        self.usage: Usage | None = None
        self.error_type: str | None = None
        self.saw_content = False
        self.complete = False

    @property
    def model(self) -> str | None:
        self._read_head()
        return self._model

    @property
    def message_id(self) -> str | None:
        self._read_head()
        return self._message_id

    @property
    def service_tier(self) -> str | None:
        self._read_head()
        return self._service_tier

    @property
    def settled(self) -> bool:
        return self.saw_content

    def block(self, block: bytes) -> None:
        # A block of one name line and one data line (as a stream comes) is known by its
        # name: most are not read further. Decoding one costs 2 µs, 8 µs for
        # response.in_progress (it repeats the request's tools and instructions, as
        # response.created does).
        line_end = block.find(b"\n")
        # One line after the name (`find`: memchr; `count` is not, over a 19 KB event).
        if block.startswith(_EVENT) and line_end > 0 and block.find(b"\n", line_end + 1) < 0:
            kind = block[len(_EVENT) : line_end].decode("utf-8", "replace")
            if kind not in _WATCHED:
                if kind.endswith(_CONTENT_SUFFIXES):
                    self.saw_content = True
                return
            # A response object's event is kept as bytes, for orjson: not decoded to text
            # and encoded again (19 KB each on a Codex turn).
            if kind != "error" and (data := _data(block, line_end + 1, self._max)) is not None:
                self.seen(kind, data)
                return
        self.read(block)

    def seen(self, kind: str, data: str | bytes) -> None:
        if kind.endswith(_CONTENT_SUFFIXES):
            # output_text, function_call_arguments, reasoning…: the first token the model made.
            self.saw_content = True
        elif kind == "response.created":
            self._read_head()  # another one before: what it said stands where this is silent
            self._head = data
        elif kind in _FINAL_EVENTS:
            self._final(data)
            if kind == "response.failed" and self.error_type is None:
                self.error_type = "response_failed"
        elif kind == "error":
            error = json_object(data.encode() if isinstance(data, str) else data) or {}
            self.error_type = text_or_none(error.get("code")) or "error"

    def _read_head(self) -> None:
        head, self._head = self._head, None
        if head is not None and (response := _response_of(head)) is not None:
            self._take(response)

    def _take(self, response: dict[str, Any]) -> None:
        """The response's model, id and tier, where it gives them."""
        self._model = text_or_none(response.get("model")) or self._model
        self._message_id = text_or_none(response.get("id")) or self._message_id
        self._service_tier = text_or_none(response.get("service_tier")) or self._service_tier

    def _final(self, raw: str | bytes) -> None:
        response = _response_of(raw)
        if response is None:
            return
        if all(text_or_none(response.get(name)) for name in _NAMED):
            self._head = None  # all the head would have said, said again
        else:
            self._read_head()
        self._take(response)
        self.complete = True
        if isinstance(usage := response.get("usage"), dict):
            self.usage = usage_from_response_fields(usage)
        error = response.get("error")
        if isinstance(error, dict):
            self.error_type = text_or_none(error.get("code")) or "response_failed"

    @property
    def usage_final(self) -> bool:
        """The final response's usage seen (response.completed and its kin)."""
        return self.usage is not None


def _response_of(raw: str | bytes) -> dict[str, Any] | None:
    """An event's `response` object, if it has one."""
    if isinstance(raw, str):
        parsed = response_object(raw.encode(), echoed.event_holder)
    elif (parsed := response_object(raw, echoed.event_holder)) is None:
        # Not JSON, or not UTF-8: read as the decoder would have given it, damage replaced.
        parsed = response_object(raw.decode("utf-8", "replace").encode(), echoed.event_holder)
    response = (parsed or {}).get("response")
    return response if isinstance(response, dict) else None


def _data(block: bytes, start: int, max_event_bytes: int) -> bytes | None:
    """The value of the `data:` line at `start`, the block's last, as bytes; None if it is
    not one, or may be over the cap (then the decoder decides)."""
    if not block.startswith(b"data:", start):
        return None
    data = block[start + 6 if block[start + 5 : start + 6] == b" " else start + 5 :]
    return data if len(data) + 1 <= max_event_bytes else None
