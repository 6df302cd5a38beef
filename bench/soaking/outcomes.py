"""Classifying each call's outcome: complete, a well-formed error, a departure, or a violation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

COMPLETE = ("complete json", "complete stream")
LEFT = ("left before the response head", "left mid-stream")
EVENT_RE = re.compile(rb"\r\n|\r|\n")
STREAM_ENDS = (b"message_stop", b"event: error", b"[DONE]", b'{"error"')


@dataclass
class Result:
    outcome: str  # one of COMPLETE, LEFT, "error json <status> <type> (<source>)",
    # "error event <type>", or "VIOLATION <what>"
    example: str = ""  # for a violation: what the client saw
    meant: str | None = None  # a planned departure that the response outran

    @property
    def violation(self) -> bool:
        return self.outcome.startswith("VIOLATION")


def sse_events(data: bytes) -> list[tuple[str, bytes]] | None:
    """(event name, data) of each complete event; None when the bytes end mid-event."""
    lines = EVENT_RE.split(data)
    events: list[tuple[str, bytes]] = []
    name, payload, pending = "message", b"", False
    for line in lines[:-1]:  # the last piece follows the last line break: it must be empty
        if not line:
            if pending:
                events.append((name, payload))
            name, payload, pending = "message", b"", False
        elif line.startswith(b"event:"):
            name, pending = line[6:].strip().decode(), True
        elif line.startswith(b"data:"):
            payload, pending = (payload + b"\n" if payload else b"") + line[5:].strip(), True
    if lines[-1] or pending:
        return None
    return events


def error_envelope(data: bytes, api: str) -> dict[str, Any] | None:
    """The error object of the API's envelope, or None if the body is not one: Anthropic's
    `{"type":"error","error":{"type","message"},"request_id"}`, OpenAI's
    `{"error":{"message","type","param","code"}}`."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if (
        isinstance(error, dict)
        and (api == "chat" or parsed.get("type") == "error")
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    ):
        return error
    return None


def classify_stream(data: bytes, api: str) -> Result:
    events = sse_events(data)
    if events is None:
        return Result("VIOLATION stream ends mid-event", data[-300:].decode(errors="replace"))
    if api == "chat":
        return classify_chat_stream([payload for _, payload in events])
    names = [name for name, _ in events]
    if names and names[-1] == "message_stop" and "error" not in names:
        if names[0] != "message_start":
            return Result("VIOLATION stream without message_start", ",".join(names))
        return Result("complete stream")
    if names and names[-1] == "error":
        error = error_envelope(events[-1][1], "messages")
        if error is None:
            return Result("VIOLATION malformed error event", events[-1][1][:300].decode())
        return Result(f"error event {error['type']}")
    return Result("VIOLATION stream ends without message_stop or error", ",".join(names[-5:]))


def classify_chat_stream(payloads: list[bytes]) -> Result:
    """Chat chunks end with `data: [DONE]`, or (a failure) with a chunk holding `error`."""
    if payloads and payloads[-1] == b"[DONE]":
        try:
            chunks = [orjson.loads(payload) for payload in payloads[:-1]]
        except orjson.JSONDecodeError:
            return Result("VIOLATION chat chunk that is not JSON", b",".join(payloads).decode())
        if any("error" in chunk for chunk in chunks):
            return Result("VIOLATION chat stream with an error before [DONE]", str(chunks)[:300])
        if not any(c.get("choices") and c["choices"][0].get("finish_reason") for c in chunks):
            return Result("VIOLATION chat stream without a finish_reason", str(chunks)[-300:])
        return Result("complete stream")
    error = error_envelope(payloads[-1], "chat") if payloads else None
    if error is None:
        tail = b" | ".join(payloads[-3:]).decode(errors="replace")
        return Result("VIOLATION chat stream ends without [DONE] or an error chunk", tail)
    return Result(f"error event {error['type']}")


def classify_json(status: int, headers: Any, data: bytes, api: str) -> Result:
    if status == 200:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            example = data[:300].decode("latin-1")
            return Result("VIOLATION 200 with a body that is not JSON", example)
        usage = message.get("usage") if isinstance(message, dict) else None
        kind, output = ("object", "chat.completion") if api == "chat" else ("type", "message")
        tokens = "completion_tokens" if api == "chat" else "output_tokens"
        if (
            isinstance(usage, dict)
            and message.get(kind) == output
            and isinstance(usage.get(tokens), int)
        ):
            return Result("complete json")
        return Result("VIOLATION 200 without a message and usage", data[:300].decode())
    error = error_envelope(data, api)
    if error is None:
        example = f"{status} {headers.get('content-type')}: {data[:300].decode('latin-1')}"
        return Result(f"VIOLATION {status} without an error envelope", example)
    # The gateway's own errors carry its request id where the API carries one: Anthropic's
    # in the body, OpenAI's in x-request-id. Relayed errors carry the provider's.
    own_id = headers.get("x-gateway-request-id")
    named = headers.get("x-request-id") if api == "chat" else orjson.loads(data).get("request_id")
    source = "gateway" if own_id and named == own_id else "upstream"
    if source == "gateway" and status >= 500 and status not in (502, 503, 504):
        return Result(f"VIOLATION the gateway's own {status}", data[:300].decode())
    retryable = status in (408, 409, 429) or status >= 500
    if source == "upstream" and retryable and headers.get("x-should-retry") != "false":
        example = f"{status}: {data[:300].decode()}"
        return Result("VIOLATION retried error relayed without x-should-retry: false", example)
    return Result(f"error json {status} {error['type']} ({source})")
