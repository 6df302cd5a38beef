from __future__ import annotations

import orjson
import pytest

from gateway.wire.anthropic_usage import StreamUsage, usage_from_message
from gateway.wire.sse import SSEDecoder, encode_event
from gateway.wire.usage import Reported, Usage


def stream(*events: tuple[str, dict[str, object]]) -> StreamUsage:
    tap = StreamUsage()
    raw = b"".join(encode_event(orjson.dumps(data).decode(), name) for name, data in events)
    for event in SSEDecoder().feed(raw):
        tap.observe(event)
    return tap


def test_message_delta_usage_is_cumulative_and_overwrites() -> None:
    tap = stream(
        ("message_start", {"message": {"model": "m", "usage": {
            "input_tokens": 10, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens": 1}}}),
        ("content_block_delta", {}),
        ("message_delta", {"usage": {"output_tokens": 7}}),
        ("message_delta", {"usage": {"output_tokens": 15, "input_tokens": 12}}),
        ("message_stop", {}),
    )  # fmt: skip
    assert tap.usage == Usage(
        input=12, output=15, cache_read=2000, cache_write_5m=100, cache_write_1h=200
    )
    assert tap.model == "m"
    assert tap.saw_content
    assert tap.complete
    assert tap.error_type is None


def test_absent_fields_keep_message_start_values_and_errors_are_seen() -> None:
    tap = stream(
        ("message_start", {"message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("ping", {}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}),
    )
    assert tap.usage == Usage(input=5, output=1)
    assert tap.error_type == "overloaded_error"
    assert not tap.complete


def test_writes_without_a_ttl_split_count_as_five_minute_writes() -> None:
    reported = usage_from_message(
        b'{"id":"msg_1","model":"m","usage":{"input_tokens":3,"output_tokens":4,'
        b'"cache_creation_input_tokens":50,"cache_read_input_tokens":0},'
        b'"diagnostics":{"cache_miss_reason":{"type":"system_changed"}}}'
    )
    assert reported == Reported(
        "m", Usage(input=3, output=4, cache_write_5m=50), "msg_1", "system_changed"
    )


def test_bodies_without_usage_yield_nothing() -> None:
    assert usage_from_message(b"not json") == Reported()
    assert usage_from_message(b'{"type":"error"}') == Reported()


def test_the_fast_path_for_delta_chunks_sees_what_full_decoding_sees() -> None:
    events = [
        encode_event(orjson.dumps(data).decode(), name)
        for name, data in (
            ("message_start", {"message": {"model": "m", "usage": {"input_tokens": 4}}}),
            ("content_block_start", {"index": 0}),
            ("ping", {"type": "ping"}),
            *[("content_block_delta", {"delta": {"text": f"w{i}"}}) for i in range(5)],
            ("message_delta", {"usage": {"output_tokens": 5}}),
            ("message_stop", {}),
        )
    ]
    whole = b"".join(events)
    per_event, split = StreamUsage(), StreamUsage()
    for chunk in events:
        per_event.feed(chunk)
    for at in range(0, len(whole), 7):
        split.feed(whole[at : at + 7])
    for tap in (per_event, split):
        assert tap.usage == Usage(input=4, output=5)
        assert tap.saw_content
        assert tap.complete


@pytest.mark.parametrize(
    "damaged",
    [
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":\n\n',
        b'event: message_start\ndata: {"type":"message_start","message":null}\n\n',
        b"event: message_delta\ndata: [1, 2]\n\n",
        b'event: message_delta\ndata: {"usage": "lots"}\n\n',
        b'event: message_delta\ndata: {"usage": {"output_tokens": "7", "input_tokens": -3}}\n\n',
        b'event: error\ndata: {"error": 42}\n\n',
        b"event: error\ndata: \xff\xfe\n\n",
    ],
)
def test_damaged_events_never_raise_and_are_not_metered(damaged: bytes) -> None:
    """Upstream bytes are untrusted: the tap must never break the relay it watches."""
    tap = StreamUsage()
    tap.feed(
        b'event: message_start\ndata: {"type":"message_start","message":{"model":"m",'
        b'"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
    )
    tap.feed(damaged)
    tap.feed(
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\n\n'
    )
    assert tap.usage == Usage(input=12, output=9)


def test_the_tap_skips_an_oversized_event_and_still_meters_the_stream() -> None:
    cap = 64 * 1024
    start = encode_event(
        orjson.dumps({"message": {"model": "m", "usage": {"input_tokens": 10}}}).decode(),
        "message_start",
    )
    end = encode_event('{"usage": {"output_tokens": 7}}', "message_delta")
    end += encode_event("{}", "message_stop")
    tap = StreamUsage(cap)
    tap.feed(start)
    tap.feed(b"event: ping\ndata: " + b"p" * (4 * cap))
    tap.feed(b"\n\n" + end)
    assert tap.decoder.skipped == 1
    assert tap.decoder.held_bytes == 0
    assert tap.complete
    assert tap.usage == Usage(input=10, output=7)


def test_usage_is_final_only_once_a_message_delta_reported_it() -> None:
    """A stream left after message_start has usage (input, 1 output) that is not final: the
    relay charges such a call its reservation (rule A of the budget review)."""
    start = ("message_start", {"message": {"usage": {"input_tokens": 9, "output_tokens": 1}}})
    begun = stream(start, ("content_block_delta", {}))
    assert begun.usage is not None
    assert not begun.usage_final
    done = stream(start, ("message_delta", {"usage": {"output_tokens": 30}}))
    assert done.usage_final
