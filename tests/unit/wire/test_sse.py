import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.wire.sse import ServerSentEvent, SSEDecoder, encode_event

ANTHROPIC = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
    b'"content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,'
    b'"output_tokens":1}}}\n'
    b"\n"
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n'
    b"\n"
    b"event: ping\n"
    b'data: {"type": "ping"}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"Gr\xc3\xbc\xc3\x9fe \xf0\x9f\x91\x8b"}}\n'
    b"\n"
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n'
    b"\n"
    b"event: input_transformations\n"
    b'data: {"type":"input_transformations","items":[]}\n'
    b"\n"
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":15}}\n'
    b"\n"
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n'
    b"\n"
)
ANTHROPIC_EVENTS = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_stop",
    "input_transformations",
    "message_delta",
    "message_stop",
]

OPENAI = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"caf\xc3\xa9 \xe2\x80\xa8 \xe2\x82\xac"},"finish_reason":null}],'
    b'"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n'
    b"data: [DONE]\n\n"
)


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def reference(stream: bytes) -> list[ServerSentEvent]:
    """The spec's algorithm, applied literally to the whole stream at once."""
    text = stream.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = re.split("\r\n|\r|\n", text)[:-1]  # the last piece is unterminated: discarded
    events, data, event, last_id, retry = [], "", "", None, None
    for line in lines:
        if line == "":
            if data:
                events.append(ServerSentEvent(event or "message", data[:-1], last_id, retry))
            data, event, retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events


def test_anthropic_stream() -> None:
    events = decode(ANTHROPIC)
    assert [e.event for e in events] == ANTHROPIC_EVENTS
    assert all(e.id is None and e.retry is None for e in events)
    assert events[2].data == '{"type": "ping"}'
    assert events[3].data.endswith('"text":"Grüße 👋"}}')
    assert events[5].data == '{"type":"input_transformations","items":[]}'
    assert events[7].data == '{"type":"message_stop"}'


def test_openai_chat_stream() -> None:
    events = decode(OPENAI)
    assert [e.event for e in events] == ["message"] * 5
    assert '"content":"café \u2028 €"' in events[1].data
    assert '"choices":[],"usage":{"prompt_tokens":9' in events[3].data
    assert events[4] == ServerSentEvent("message", "[DONE]", None, None)


@pytest.mark.parametrize("stream", [ANTHROPIC, OPENAI], ids=["anthropic", "openai"])
def test_every_two_chunk_split_and_byte_at_a_time_agree(stream: bytes) -> None:
    whole = decode(stream)
    for cut in range(len(stream) + 1):
        assert decode(stream[:cut], stream[cut:]) == whole, cut
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == whole


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr", "lf"])
def test_line_endings(eol: bytes) -> None:
    stream = ANTHROPIC.replace(b"\n", eol)
    assert decode(stream) == decode(ANTHROPIC)
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == decode(ANTHROPIC)


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # If the LF after a chunk-final CR counted as a line of its own, "data: a" would be
    # dispatched alone and "data: b" would start a second event.
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [
        ServerSentEvent("message", "a\nb", None, None)
    ]


def test_lone_cr_then_cr_is_two_line_ends() -> None:
    assert decode(b"data: a\r", b"\r", b"data: b\r\r") == [
        ServerSentEvent("message", "a", None, None),
        ServerSentEvent("message", "b", None, None),
    ]


def test_empty_chunk_keeps_pending_cr() -> None:
    assert decode(b"data: a\r", b"", b"\n\n") == [ServerSentEvent("message", "a", None, None)]


def test_multiline_data() -> None:
    stream = b"data: first\ndata:second\ndata:  third\ndata\ndata: \n\n"
    assert decode(stream) == [ServerSentEvent("message", "first\nsecond\n third\n\n", None, None)]


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\n:\ndata: x\n: between\n\n: trailing comment\n\n"
    assert decode(stream) == [ServerSentEvent("message", "x", None, None)]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\n\n") == [ServerSentEvent("message", "", None, None)]
    assert decode(b"event: x\nevent\ndata: y\n\n") == [ServerSentEvent("message", "y", None, None)]


def test_only_one_space_after_colon_is_removed() -> None:
    assert decode(b"event:  spaced\ndata:\tx \n\n") == [
        ServerSentEvent(" spaced", "\tx ", None, None)
    ]


def test_block_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\nid: 1\n\nretry: 10\n\n\n\n") == []


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\nDATA: no\ndata: yes\nevent : no\n\n") == [
        ServerSentEvent("message", "yes", None, None)
    ]


def test_id_persists_until_replaced_and_ignores_nul() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n"
    assert [e.id for e in decode(stream)] == ["1", "1", "1", ""]


def test_retry_only_ascii_digits() -> None:
    stream = (
        b"retry: 3000\ndata: a\n\n"
        b"data: b\n\n"
        b"retry: 12a\ndata: c\n\n"
        b"retry: \xc2\xb2\ndata: d\n\n"
        b"retry:\ndata: e\n\n"
        b"retry: 1\nretry: -5\ndata: f\n\n"
        b"retry: " + b"9" * 5000 + b"\ndata: g\n\n"
    )
    assert [e.retry for e in decode(stream)] == [3000, None, None, None, None, 1, None]


def test_bom_is_stripped_once_even_when_split() -> None:
    bom = b"\xef\xbb\xbf"
    expected = [ServerSentEvent("message", "x", None, None)]
    assert decode(bom + b"data: x\n\n") == expected
    assert decode(bom[:1], bom[1:2], bom[2:] + b"data: x\n\n") == expected
    # A second BOM is part of the field name, making it an unknown field.
    assert decode(bom + bom + b"data: x\n\n") == []
    assert decode(b"data: x\n\n" + bom + b"data: y\n\n") == expected


def test_unicode_line_separators_are_not_line_breaks() -> None:
    text = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg"
    assert decode(b"data: " + text.encode() + b"\n\n") == [
        ServerSentEvent("message", text, None, None)
    ]


def test_utf8_character_split_across_chunks() -> None:
    stream = "data: 👋€é\n\n".encode()
    for cut in range(7, 16):
        assert decode(stream[:cut], stream[cut:]) == [
            ServerSentEvent("message", "👋€é", None, None)
        ], cut


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"data: a\xffb\n\n") == [ServerSentEvent("message", "a\ufffdb", None, None)]


def test_flush_drops_an_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\ndata: done\n\ndata: half\n") == [
        ServerSentEvent("message", "done", "7", None)
    ]
    assert decoder.feed(b"data: more") == []
    assert decoder.flush() == []
    # The decoder starts a fresh stream (a reconnection), keeping the last event ID.
    assert decoder.feed(b"\xef\xbb\xbfdata: new\n\n") == [
        ServerSentEvent("message", "new", "7", None)
    ]


def test_flush_drops_an_event_missing_only_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: message_stop\ndata: {}\n") == []
    assert decoder.flush() == []


def test_flush_forgets_a_pending_cr() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    decoder.flush()
    assert decoder.feed(b"\ndata: b\n\n") == [ServerSentEvent("message", "b", None, None)]


def test_encode_event() -> None:
    assert encode_event("hi") == b"data: hi\n\n"
    assert encode_event("a\nb\r\nc\rd", "delta") == (
        b"event: delta\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    assert encode_event("", "") == b"event: \ndata: \n\n"


@pytest.mark.parametrize("event", ["a\nb", "a\rb", "x\r\n"])
def test_encode_event_rejects_multiline_event_name(event: str) -> None:
    with pytest.raises(ValueError, match="one line"):
        encode_event("x", event)


@given(data=st.text(), event=st.none() | st.text().filter(lambda s: not {"\r", "\n"} & set(s)))
def test_encode_decode_round_trip(data: str, event: str | None) -> None:
    encoded = encode_event(data, event) + encode_event("after")
    lf_data = data.replace("\r\n", "\n").replace("\r", "\n")
    expected = [
        ServerSentEvent(event or "message", lf_data, None, None),
        ServerSentEvent("message", "after", None, None),
    ]
    assert decode(encoded) == expected
    assert decode(*(encoded[i : i + 1] for i in range(len(encoded)))) == expected


TOKENS = [b"\r", b"\n", b"\r\n", b"data", b"event", b"id", b"retry", b":", b" ", b"x", b"7"]
TOKENS += [b"\0", b"\xef\xbb\xbf", "\u2028é👋".encode(), b"\xe2\x82"]


@given(
    parts=st.lists(st.sampled_from(TOKENS), max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_stream_in_any_chunking_matches_the_spec_reference(
    parts: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(parts)
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode(*chunks) == reference(stream)


# Caps: an upstream stream with no line ends, or one endless event, must
# not grow what the decoder holds past max_event_bytes.

CAP = 64 * 1024
BLOCK = b"x" * 16 * 1024


def test_a_stream_without_line_ends_never_grows_the_decoder_past_its_cap() -> None:
    decoder = SSEDecoder(CAP)
    held = 0
    for _ in range(640):  # 10 MiB in 16 KiB chunks
        assert decoder.feed(BLOCK) == []
        held = max(held, decoder.held_bytes)
    assert held <= CAP + len(BLOCK)
    assert decoder.skipped == 1


def test_decoding_resumes_at_the_event_after_an_oversized_one() -> None:
    decoder = SSEDecoder(CAP)
    events = decoder.feed(b"event: ping\ndata: ")
    for _ in range(20):
        events += decoder.feed(BLOCK)
    events += decoder.feed(b"\ndata: more of the same event\n\n")
    events += decoder.feed(b"event: message_stop\ndata: {}\n\n")
    assert [(e.event, e.data) for e in events] == [("message_stop", "{}")]
    assert decoder.skipped == 1
    assert decoder.between_events


def test_an_event_of_many_short_lines_over_the_cap_is_skipped_whole() -> None:
    decoder = SSEDecoder(CAP)
    line = b"data: " + b"y" * 1000 + b"\n"
    events = decoder.feed(b"event: huge\n")
    for _ in range(200):  # 200 KB of data lines in one event
        events += decoder.feed(line)
        assert decoder.held_bytes <= CAP + len(line)
    events += decoder.feed(b"\nevent: after\ndata: ok\n\n")
    assert [(e.event, e.data) for e in events] == [("after", "ok")]
    assert decoder.skipped == 1


def test_an_overlong_line_split_at_any_chunking_ends_the_same_way() -> None:
    stream = b"data: " + b"z" * (3 * CAP) + b"\n\n" + b"data: next\n\n"
    for size in (1000, CAP - 1, CAP, CAP + 7, len(stream)):
        decoder = SSEDecoder(CAP)
        events = [
            e for i in range(0, len(stream), size) for e in decoder.feed(stream[i : i + size])
        ]
        assert [e.data for e in events] == ["next"], size


def test_events_under_the_cap_are_unaffected() -> None:
    decoder = SSEDecoder(len(ANTHROPIC))
    assert [e.event for e in decoder.feed(ANTHROPIC)] == ANTHROPIC_EVENTS
    assert decoder.skipped == 0


def test_the_cap_is_per_event_not_per_stream() -> None:
    decoder = SSEDecoder(CAP)
    event = b"data: " + b"w" * 1000 + b"\n\n"
    events = [e for _ in range(500) for e in decoder.feed(event)]  # 500 KB in all
    assert len(events) == 500
    assert decoder.skipped == 0
    assert decoder.held_bytes == 0
