"""The taps read a chunk of whole events block by block, and after the first token only the
blocks a C search finds (wire/sse.py: aligned; wire/event_blocks.py: EventBlocks): in any
chunking, on streams shaped as providers send them and on odd but valid ones, they read
what decoding every event reads."""

from __future__ import annotations

import orjson
import pytest

from gateway.wire.anthropic_usage import StreamUsage
from gateway.wire.openai_usage import ChatStreamUsage
from gateway.wire.responses_usage import ResponsesStreamUsage
from gateway.wire.sse import SSEDecoder

AnyTap = StreamUsage | ChatStreamUsage | ResponsesStreamUsage


def event(name: str | None, data: object, sep: bytes = b": ") -> bytes:
    head = b"" if name is None else b"event" + sep + name.encode() + b"\n"
    return head + b"data" + sep + orjson.dumps(data) + b"\n\n"


MESSAGE = {"id": "msg_1", "model": "m", "usage": {"input_tokens": 7}}
START = event("message_start", {"type": "message_start", "message": MESSAGE})
DELTA = event("content_block_delta", {"delta": {"text": "hi message_delta"}})
END = event("message_delta", {"usage": {"output_tokens": 5}}) + event("message_stop", {})
BLOCK = event("content_block_start", {"index": 0})

ANTHROPIC = [
    START + BLOCK + event("ping", {}) + DELTA * 5 + END,
    # The last `event:` line names the event: a delta's first line does not.
    START + DELTA + b'event: content_block_delta\nevent: message_delta\ndata: {"usage":'
    b'{"output_tokens":9}}\n\n' + DELTA,
    # ...and a watched name followed by another is not that event.
    START
    + DELTA
    + b'event: message_delta\nevent: ping\ndata: {"usage":{"output_tokens":9}}\n\n'
    + END,
    START + DELTA * 2 + event("message_delta", {"usage": {"output_tokens": 3}}, sep=b":"),
    START + DELTA + b"\n\n\n" + b": a comment\nid: 4\n" + END + b"\n",
    START + DELTA + b'event: error\ndata: {"error":{"type":"overloaded_error"}}\n\n',
    START + b"event: content_block_delta\n\n" + DELTA + END,
    START + DELTA + b"event: message_delta\ndata: {\ndata: }\n\n" + END,
    # Long events (a block's end found line by line) and a stream ending in a lone LF.
    event("message_start", {"message": {**MESSAGE, "content": "x" * 3000}})
    + DELTA
    + event("message_delta", {"usage": {"output_tokens": 4}, "pad": "y" * 2000})
    + b"event: message_stop\ndata: {}\n\n\n",
]


def chat(data: dict[str, object]) -> bytes:
    return event(None, {"id": "c1", "model": "gpt", **data})


CHAT_DELTA = chat({"choices": [{"delta": {"content": "x"}}], "usage": None})
CHAT_USAGE = chat({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})
CHAT = [
    chat({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    + CHAT_DELTA * 4
    + CHAT_USAGE
    + b"data: [DONE]\n\n",
    CHAT_DELTA * 3 + b"data:[DONE]\n\n",
    CHAT_DELTA * 2 + b'data: {"error": {"type": "server_error"}}\n\n',
    CHAT_DELTA + b"data: " + orjson.dumps({"choices": []}) + b"\ndata: " + CHAT_USAGE[6:],
]


def responses(name: str, sep: bytes = b": ", **data: object) -> bytes:
    return event(name, {"type": name, **data}, sep)


HEAD = {"id": "resp_1", "model": "gpt", "service_tier": "default"}
DONE = {**HEAD, "usage": {"input_tokens": 11, "output_tokens": 3}}
RESPONSES = [
    responses("response.created", response=HEAD)
    + responses("response.output_text.delta", delta="a") * 3
    + responses("response.completed", response=DONE),
    responses("response.output_text.delta", delta="a")
    + responses("response.completed", response={"usage": DONE["usage"]}, sep=b":")
    + responses("response.created", response=HEAD),
    responses("response.output_text.delta", delta="a")
    + b'event: response.output_text.delta\nevent: error\ndata: {"code": "x"}\n\n',
    # As Codex's: the request's tools echoed in long events before the first token.
    responses("response.created", response={**HEAD, "tools": ["t" * 5000]})
    + responses("response.in_progress", response={**HEAD, "tools": ["t" * 5000]})
    + responses("response.output_text.delta", delta="a") * 2
    + responses("response.completed", response={**DONE, "tools": ["t" * 5000]}),
    # A response read from its bytes that are not UTF-8: as decoded, damage replaced.
    responses("response.output_text.delta", delta="a")
    + responses("response.completed", response=DONE).replace(b'"resp_1"', b'"resp_\xff"'),
]


def read(tap: AnyTap) -> tuple[object, ...]:
    return (
        tap.model,
        tap.message_id,
        tap.service_tier,
        tap.usage,
        tap.usage_final,
        tap.saw_content,
        tap.complete,
        tap.error_type,
    )


def reference(new_tap: type[AnyTap], raw: bytes) -> tuple[object, ...]:
    """Every event decoded and observed."""
    tap = new_tap()
    for decoded in SSEDecoder().feed(raw):
        tap.observe(decoded)
    return read(tap)


def chunkings(raw: bytes) -> list[list[bytes]]:
    events = [part + b"\n\n" for part in raw.split(b"\n\n")[:-1]]
    return [
        [raw],
        events,
        *([raw[i : i + size] for i in range(0, len(raw), size)] for size in (1, 7, 600, 4096)),
        [b"".join(events[:2]), b"".join(events[2:])],
        [raw[:-1], b"", raw[-1:]],  # the last blank line in a chunk of its own
    ]


@pytest.mark.parametrize(
    ("new_tap", "raw"),
    [(StreamUsage, raw) for raw in ANTHROPIC]
    + [(ChatStreamUsage, raw) for raw in CHAT]
    + [(ResponsesStreamUsage, raw) for raw in RESPONSES],
)
def test_every_chunking_reads_what_decoding_every_event_reads(
    new_tap: type[AnyTap], raw: bytes
) -> None:
    expected = reference(new_tap, raw)
    for chunks in chunkings(raw):
        tap = new_tap()
        for chunk in chunks:
            tap.feed(chunk)
        assert read(tap) == expected, chunks


def test_a_watched_event_after_many_deltas_is_found_once() -> None:
    tap = StreamUsage()
    tap.feed(START + DELTA)
    tap.feed(DELTA * 50 + event("message_delta", {"usage": {"output_tokens": 3}}) + DELTA * 3)
    assert tap.usage is not None
    assert tap.usage.output == 3
    assert tap.usage_final
    assert not tap.complete


def test_a_chunk_ending_in_an_empty_line_of_its_own_is_read_to_its_end() -> None:
    """Three LFs at a chunk's end: its last event, then an empty line alone (which once
    made the block walk start over at the chunk's head, and never return)."""
    tap = StreamUsage()
    tap.feed(START + DELTA + b"\n")
    tap.feed(END + b"\n\n\n")
    assert tap.complete
    assert tap.usage == reference_usage(START + DELTA + END)


def test_a_tap_holds_at_most_an_event_of_a_chunk_it_cannot_read_yet() -> None:
    """A chunk that ends within an event is read up to its last whole event; the rest is
    held for the next chunk, and an event over the cap goes to the decoder, which skips it."""
    tap = StreamUsage(1024)
    tap.feed(START + DELTA[:10])
    assert tap.saw_content is False
    tap.feed(DELTA[10:] + b"event: ping\ndata: " + b"p" * 2000)
    assert tap.saw_content
    tap.feed(b"\n\n" + END)
    assert tap.decoder.skipped == 1
    assert tap.complete
    assert tap.usage == reference_usage(START + DELTA + END)


def reference_usage(raw: bytes) -> object:
    return reference(StreamUsage, raw)[3]


def test_an_event_of_many_lines_over_the_cap_is_skipped_as_the_decoder_skips_it() -> None:
    endless = b"event: ping\n" + b"data: xxxxxxxxxx\n" * 400  # 4,400 bytes of fields
    tap = StreamUsage(1024)
    tap.feed(START + DELTA)
    for i in range(0, len(endless), 100):
        tap.feed(endless[i : i + 100])
    tap.feed(b"\n" + END)
    assert tap.decoder.skipped == 1
    assert tap.complete
    assert tap.usage == reference_usage(START + DELTA + END)
