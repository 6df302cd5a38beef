"""The wire formats the gateway relays, each as one small record of what differs between them.

The endpoints (endpoint/) and the relay (relay.py) are the same for every format: they read
one of these to know how to read usage from a body or a stream, how to render the gateway's
own errors, how to end a stream it had to cut and whether a stream must be asked for its
usage. Nothing here does I/O; everything is a plain function or a class from `wire/`. (The
rewrite stages are picked by `name` in rewrite/pipeline.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import GatewayError, render_anthropic, render_openai
from gateway.wire import anthropic_errors, openai_errors, openai_stream
from gateway.wire.anthropic_text import StreamText, message_text
from gateway.wire.anthropic_usage import StreamUsage, usage_from_message
from gateway.wire.echo import EchoFilter
from gateway.wire.openai_text import ChatStreamText, ResponsesStreamText, chat_text, response_text
from gateway.wire.openai_usage import (
    ChatStreamUsage,
    usage_from_chat,
    usage_from_response,
)
from gateway.wire.responses_usage import ResponsesStreamUsage
from gateway.wire.tap import Tap
from gateway.wire.usage import Reported


class TextCollector(Protocol):
    """A stream's answer text as it passes (shadow pairs only)."""

    def feed(self, chunk: bytes) -> None: ...

    @property
    def text(self) -> str: ...


class ChunkFilter(Protocol):
    """Bytes the client must not see taken out of a stream (openai_stream.UsageChunkFilter)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class WireFormat:
    name: str  # for logs and tests: messages, chat_completions, responses
    provider: str  # the providers.<name> the calls go to, and the metrics' provider label
    # Each stream parser is given the most of one event it may hold (max_event_bytes).
    new_tap: Callable[[int], Tap]  # watches a stream for first token, usage, errors
    usage_from_body: Callable[[bytes], Reported]  # a JSON response's usage
    render_error: Callable[[GatewayError, str], bytes]  # (error, request id) -> body
    stream_error_event: Callable[[str], bytes]  # ends a stream cut after bytes were sent
    message_text: Callable[[bytes], str]
    new_stream_text: Callable[[int], TextCollector]
    # The header that carries the gateway's request id on its own errors (OpenAI's SDK reads
    # x-request-id; Anthropic's body has a request_id field instead).
    request_id_header: bytes | None = None
    # Sets what a stream needs to report usage, and says whether it changed the body; the
    # filter then takes out of the client's stream what that setting added.
    ask_usage: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]] | None = None
    new_usage_filter: Callable[[int], ChunkFilter] | None = None


def _anthropic_event(message: str) -> bytes:
    return anthropic_errors.error_event("api_error", message)


def _openai_error(error: GatewayError, request_id: str) -> bytes:
    return render_openai(error)


ANTHROPIC_MESSAGES = WireFormat(
    name="messages",
    provider="anthropic",
    new_tap=StreamUsage,
    usage_from_body=usage_from_message,
    render_error=render_anthropic,
    stream_error_event=_anthropic_event,
    message_text=message_text,
    new_stream_text=StreamText,
)

OPENAI_CHAT = WireFormat(
    name="chat_completions",
    provider="openai",
    new_tap=ChatStreamUsage,
    usage_from_body=usage_from_chat,
    render_error=_openai_error,
    stream_error_event=openai_errors.chat_error_chunk,
    message_text=chat_text,
    new_stream_text=ChatStreamText,
    request_id_header=b"x-request-id",
    ask_usage=openai_stream.request_usage,
    new_usage_filter=openai_stream.UsageChunkFilter,
)

OPENAI_RESPONSES = WireFormat(
    name="responses",
    provider="openai",
    new_tap=ResponsesStreamUsage,
    usage_from_body=usage_from_response,
    render_error=_openai_error,
    stream_error_event=openai_errors.responses_error_event,
    message_text=response_text,
    new_stream_text=ResponsesStreamText,
    request_id_header=b"x-request-id",
)


OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/responses"})
ANTHROPIC_PATH_PREFIX = "/v1/messages"


def wire_for(path: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> WireFormat:
    """The envelope an error on `path` is rendered in when no relay owns the request (the
    framework's 404/405, the HTTP server's 400/408/431/503): OpenAI's on OpenAI's paths and
    for OpenAI-style clients (a bearer token, no anthropic-version), Anthropic's otherwise."""
    if path in OPENAI_PATHS:
        return OPENAI_CHAT
    if path.startswith(ANTHROPIC_PATH_PREFIX):
        return ANTHROPIC_MESSAGES
    names = {name for name, _ in headers}
    if b"authorization" in names and b"anthropic-version" not in names:
        return OPENAI_CHAT
    return ANTHROPIC_MESSAGES


def client_filter(
    wire: WireFormat, max_event_bytes: int, filtered: bool, injected: bytes | None
) -> ChunkFilter | None:
    """What the client's stream loses on the way: the usage the gateway asked for
    (`filtered`), and a value it added that the provider echoes (`injected`: null instead)."""
    new_filter = wire.new_usage_filter
    strip = new_filter(max_event_bytes) if filtered and new_filter is not None else None
    if injected is None:
        return strip
    echo = EchoFilter(injected, b"null")
    return echo if strip is None else _Chained(strip, echo)


class _Chained:
    """Two chunk filters, one after the other."""

    def __init__(self, first: ChunkFilter, second: ChunkFilter) -> None:
        self.first = first
        self.second = second

    def feed(self, chunk: bytes) -> bytes:
        return self.second.feed(self.first.feed(chunk))

    def flush(self) -> bytes:
        return self.second.feed(self.first.flush()) + self.second.flush()


def error_response(
    wire: WireFormat, error: GatewayError, request_id: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a gateway error in `wire`'s envelope."""
    body = wire.render_error(error, request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-gateway-request-id", request_id.encode()),
    ]
    if wire.request_id_header is not None:
        headers.append((wire.request_id_header, request_id.encode()))
    if error.retried:
        headers.append((b"x-should-retry", b"false"))
    headers.extend(error.headers)
    return headers, body
