from __future__ import annotations

import itertools

import orjson
from hypothesis import given
from hypothesis import strategies as st

from gateway.wire.openai_stream import UsageChunkFilter, request_usage

USAGE = {"prompt_tokens": 2000, "completion_tokens": 5, "total_tokens": 2005}


def chunk(delta: dict[str, object], finish: str | None = None, *, null_usage: bool) -> bytes:
    data: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if null_usage:
        data["usage"] = None
    return b"data: " + orjson.dumps(data) + b"\n\n"


def stream(*, with_usage: bool, newline: bytes = b"\n") -> bytes:
    events = [
        chunk({"role": "assistant", "content": ""}, null_usage=with_usage),
        chunk({"content": "Hello"}, null_usage=with_usage),
        chunk({"content": ' "usage":null}'}, null_usage=with_usage),
        chunk({}, "stop", null_usage=with_usage),
    ]
    if with_usage:
        usage_chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []}
        events.append(b"data: " + orjson.dumps({**usage_chunk, "usage": USAGE}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events).replace(b"\n", newline)


def filtered(parts: list[bytes]) -> bytes:
    usage_filter = UsageChunkFilter()
    return b"".join(usage_filter.feed(part) for part in parts) + usage_filter.flush()


def test_request_usage_sets_the_flag_only_when_missing() -> None:
    body = {"model": "m", "stream": True, "stream_options": {"include_obfuscation": False}}
    asked, changed = request_usage(body)
    assert changed
    assert asked["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body["stream_options"] == {"include_obfuscation": False}  # not mutated
    assert request_usage({"stream": True})[0]["stream_options"] == {"include_usage": True}
    assert request_usage({"stream": True, "stream_options": None})[1]
    assert request_usage({"stream": True, "stream_options": {"include_usage": False}})[1]
    already = {"stream": True, "stream_options": {"include_usage": True}}
    assert request_usage(already) == (already, False)
    assert request_usage({"model": "m"}) == ({"model": "m"}, False)
    assert not request_usage({"stream": True, "stream_options": "bad"})[1]


def test_removes_the_usage_chunk_and_the_null_usage_members() -> None:
    assert filtered([stream(with_usage=True)]) == stream(with_usage=False)


def test_content_that_looks_like_usage_is_untouched() -> None:
    # The third chunk's text ends in `"usage":null}` inside a string: escaped, so not a tail.
    out = filtered([stream(with_usage=True)])
    assert b'\\"usage\\":null}' in out


def test_crlf_and_cr_streams() -> None:
    for newline in (b"\r\n", b"\r"):
        assert filtered([stream(with_usage=True, newline=newline)]) == stream(
            with_usage=False, newline=newline
        )


def test_only_the_first_usage_chunk_goes() -> None:
    once = b'data: {"choices":[],"usage":{"prompt_tokens":1}}\n\n'
    assert filtered([once, once]) == once


def test_errors_and_unknown_lines_pass() -> None:
    raw = b'data: {"error":{"message":"boom","type":"server_error"}}\n\n: comment\n\n'
    assert filtered([raw]) == raw


def test_whole_events_per_chunk_give_the_direct_stream() -> None:
    """As a stream arrives: chunks of whole events, most without the usage chunk."""
    for newline in (b"\n", b"\r\n", b"\r"):
        end = newline * 2
        upstream = stream(with_usage=True, newline=newline)
        events = [event + end for event in upstream.split(end) if event]
        expected = stream(with_usage=False, newline=newline)
        assert filtered(events) == expected
        assert filtered([b"".join(events[:3]), b"".join(events[3:])]) == expected


def test_each_event_is_released_by_the_feed_that_completes_it() -> None:
    usage_filter = UsageChunkFilter()
    first = chunk({"content": "Hi"}, null_usage=True)
    assert usage_filter.feed(first[:10]) == b""
    assert usage_filter.feed(first[10:]) == chunk({"content": "Hi"}, null_usage=False)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(st.data(), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_any_chunking_gives_the_direct_stream(data: st.DataObject, newline: bytes) -> None:
    upstream = stream(with_usage=True, newline=newline)
    parts = data.draw(splits(upstream))
    assert filtered(parts) == stream(with_usage=False, newline=newline)


@given(st.data())
def test_nothing_complete_is_held_back(data: st.DataObject) -> None:
    upstream = stream(with_usage=True)
    usage_filter = UsageChunkFilter()
    sent = fed = b""
    for part in data.draw(splits(upstream)):
        sent += usage_filter.feed(part)
        fed += part
        if fed.endswith(b"\n\n"):  # at an event boundary, every event so far is out
            assert sent == filtered([fed])
    assert usage_filter.flush() == b""


def test_the_filter_gives_up_on_an_event_past_its_cap_and_passes_every_byte() -> None:
    cap = 64 * 1024
    usage_filter = UsageChunkFilter(cap)
    endless = b"data: " + b"x" * (10 * 1024 * 1024)  # no line end, ever
    out = bytearray()
    for i in range(0, len(endless), 16 * 1024):
        out += usage_filter.feed(endless[i : i + 16 * 1024])
        assert len(endless[: i + 16 * 1024]) - len(out) <= cap + 16 * 1024  # held at most
    rest = stream(with_usage=True)
    out += usage_filter.feed(rest) + usage_filter.flush()
    assert bytes(out) == endless + rest  # unchanged from there on


def test_events_under_the_cap_are_still_filtered() -> None:
    body = stream(with_usage=True)
    usage_filter = UsageChunkFilter(len(body))
    assert usage_filter.feed(body) + usage_filter.flush() == stream(with_usage=False)


def test_a_chunk_of_whole_events_is_filtered_as_event_by_event() -> None:
    """The whole-chunk path (the usage chunk cut out where `"choices":[]` finds it) against
    the event-by-event walk a byte at a time: blank-line runs, an empty choices list that is
    not the usage chunk, the usage chunk last or first."""
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":1}}\n\n'
    not_usage = b'data: {"choices":[],"usage":null}\n\n'
    content = chunk({"content": "Hi"}, null_usage=True)
    for raw in (
        content + b"\n" + not_usage + b"\n\n" + usage + b"\n",
        usage + content + usage,
        content + not_usage + usage,
        b"\n\n" + usage,
    ):
        assert filtered([raw]) == filtered([raw[i : i + 1] for i in range(len(raw))])
