from __future__ import annotations

import orjson

from gateway.errors import PayloadTooLarge, UpstreamUnavailable, render_openai
from gateway.wire.openai_errors import error_body, error_type_for
from gateway.wire.openai_usage import (
    ChatStreamUsage,
    usage_from_chat,
    usage_from_response,
)
from gateway.wire.responses_usage import ResponsesStreamUsage
from gateway.wire.sse import encode_event
from gateway.wire.usage import Reported, Usage

CHAT_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 12,
    "total_tokens": 2018,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
}


def test_chat_prompt_tokens_include_cached_ones_and_input_does_not() -> None:
    body = {"id": "chatcmpl-9", "model": "gpt-4.1-2025-04-14", "usage": CHAT_USAGE}
    assert usage_from_chat(orjson.dumps(body)) == Reported(
        "gpt-4.1-2025-04-14", Usage(input=86, output=12, cache_read=1920), "chatcmpl-9"
    )


def test_chat_writes_are_neither_input_nor_reads() -> None:
    usage = {
        **CHAT_USAGE,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 900},
    }
    reported = usage_from_chat(orjson.dumps({"model": "gpt-5.6-sol", "usage": usage}))
    assert reported.usage == Usage(input=106, output=12, cache_read=1000, cache_write_5m=900)


def test_responses_usage_with_write_ttls() -> None:
    usage = {
        "input_tokens": 5000,
        "output_tokens": 7,
        "total_tokens": 5007,
        "input_tokens_details": {
            "cached_tokens": 2000,
            "cache_write_tokens": 2500,
            "cache_write_tokens_details": {"ttl_30m_tokens": 2000, "ttl_12h_tokens": 500},
        },
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    body = {"id": "resp_1", "object": "response", "model": "gpt-6-sol", "usage": usage}
    assert usage_from_response(orjson.dumps(body)) == Reported(
        "gpt-6-sol",
        Usage(input=500, output=7, cache_read=2000, cache_write_5m=2000, cache_write_1h=500),
        "resp_1",
    )


def test_bodies_without_usage_report_nothing() -> None:
    assert usage_from_chat(b"not json") == Reported()
    assert usage_from_chat(b'{"error":{"message":"x"}}') == Reported()
    assert usage_from_response(b"[]") == Reported()
    missing_details = {"usage": {"prompt_tokens": 10, "completion_tokens": 2}}
    assert usage_from_chat(orjson.dumps(missing_details)).usage == Usage(input=10, output=2)


def chat_chunk(delta: dict[str, object], **extra: object) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    data = {"id": "chatcmpl-5", "model": "gpt-4o-mini-2024-07-18", "choices": [choice], **extra}
    return b"data: " + orjson.dumps(data) + b"\n\n"


def chat_stream(*, usage: bool) -> bytes:
    parts = [
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"content": "Hi"}),
        chat_chunk({"content": " there"}),
    ]
    if usage:
        usage_chunk = {"id": "chatcmpl-5", "choices": [], "usage": CHAT_USAGE}
        parts.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
    return b"".join([*parts, b"data: [DONE]\n\n"])


def test_chat_stream_tap_in_any_chunking() -> None:
    raw = chat_stream(usage=True)
    for size in (1, 7, len(raw)):
        tap = ChatStreamUsage()
        for start in range(0, len(raw), size):
            tap.feed(raw[start : start + size])
        assert (tap.model, tap.message_id) == ("gpt-4o-mini-2024-07-18", "chatcmpl-5")
        assert tap.usage == Usage(input=86, output=12, cache_read=1920)
        assert tap.saw_content
        assert tap.complete
        assert tap.error_type is None


def test_chat_stream_tap_first_content_and_errors() -> None:
    tap = ChatStreamUsage()
    tap.feed(chat_chunk({"role": "assistant", "content": ""}))
    assert not tap.saw_content  # the role chunk is not a token
    tap.feed(chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}))
    assert tap.saw_content
    tap.feed(b'data: {"error":{"message":"boom","type":"server_error"}}\n\n')
    assert tap.error_type == "server_error"
    assert tap.usage is None  # no include_usage: nothing to meter


def responses_event(kind: str, **data: object) -> bytes:
    return encode_event(orjson.dumps({"type": kind, **data}).decode(), kind)


def test_responses_stream_tap() -> None:
    head = {"id": "resp_7", "model": "gpt-5.5-2026-04-23", "usage": None}
    usage = {
        "input_tokens": 1300,
        "output_tokens": 3,
        "input_tokens_details": {"cached_tokens": 1280, "cache_write_tokens": 0},
    }
    tap = ResponsesStreamUsage()
    tap.feed(responses_event("response.created", response=head, sequence_number=0))
    assert (tap.model, tap.message_id, tap.saw_content) == ("gpt-5.5-2026-04-23", "resp_7", False)
    tap.feed(responses_event("response.output_text.delta", delta="Hi", sequence_number=1))
    assert tap.saw_content
    done = {**head, "usage": usage}
    tap.feed(responses_event("response.completed", response=done, sequence_number=2))
    assert tap.usage == Usage(input=20, output=3, cache_read=1280)
    assert tap.complete
    assert tap.error_type is None


def test_responses_stream_head_read_where_the_final_event_is_silent() -> None:
    """response.created is parsed late (only if needed): what it said still counts where the
    final event leaves a field out, and the final event's own values win where it does not."""
    head = {"id": "resp_9", "model": "gpt-5.4", "service_tier": "auto", "usage": None}
    tap = ResponsesStreamUsage()
    tap.feed(responses_event("response.created", response=head, sequence_number=0))
    done = {"id": "resp_9", "service_tier": "priority", "usage": {"input_tokens": 5}}
    tap.feed(responses_event("response.completed", response=done, sequence_number=1))
    assert (tap.model, tap.message_id, tap.service_tier) == ("gpt-5.4", "resp_9", "priority")
    assert tap.usage == Usage(input=5)
    cut = ResponsesStreamUsage()  # no final event: the head says it all
    cut.feed(responses_event("response.created", response=head, sequence_number=0))
    cut.feed(responses_event("response.output_text.delta", delta="Hi", sequence_number=1))
    assert (cut.model, cut.message_id, cut.service_tier, cut.complete) == (
        "gpt-5.4",
        "resp_9",
        "auto",
        False,
    )


def responses_stream() -> bytes:
    head = {"id": "resp_3", "model": "gpt-5.4", "service_tier": "auto", "usage": None}
    head["tools"] = [{"type": "function", "name": "shell", "parameters": {}}]
    usage = {"input_tokens": 40, "output_tokens": 2}
    done = {**head, "service_tier": "default", "usage": usage}
    return b"".join(
        [
            responses_event("response.created", response=head, sequence_number=0),
            responses_event("response.in_progress", response=head, sequence_number=1),
            responses_event("response.output_text.delta", delta="Hi", sequence_number=2),
            responses_event("response.output_text.done", text="Hi", sequence_number=3),
            responses_event("response.completed", response=done, sequence_number=4),
        ]
    )


def test_stream_taps_read_the_same_in_every_chunking() -> None:
    """One event per chunk (the taps skip most such chunks by their bytes, undecoded),
    the whole stream at once, and 7-byte pieces: the same reading."""

    def read(tap: ChatStreamUsage | ResponsesStreamUsage) -> tuple[object, ...]:
        fields = (tap.model, tap.message_id, tap.service_tier, tap.usage, tap.saw_content)
        return (*fields, tap.complete, tap.error_type)

    for new_tap, raw in (
        (ChatStreamUsage, chat_stream(usage=True)),
        (ResponsesStreamUsage, responses_stream()),
    ):
        whole = new_tap()
        whole.feed(raw)
        assert whole.saw_content
        assert whole.complete
        assert whole.usage is not None
        events = [event + b"\n\n" for event in raw.split(b"\n\n") if event]
        pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
        for chunks in (events, pieces):
            tap = new_tap()
            for chunk in chunks:
                tap.feed(chunk)
            assert read(tap) == read(whole)


def test_responses_stream_failures() -> None:
    failed = ResponsesStreamUsage()
    response = {"id": "resp_8", "model": "gpt-6-sol", "error": {"code": "server_error"}}
    failed.feed(responses_event("response.failed", response=response, sequence_number=3))
    assert failed.error_type == "server_error"
    errored = ResponsesStreamUsage()
    errored.feed(responses_event("error", code="rate_limit_exceeded", message="slow down"))
    assert errored.error_type == "rate_limit_exceeded"


def test_openai_error_envelope() -> None:
    assert orjson.loads(error_body("bad", "invalid_request_error", "model")) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": None}
    }
    assert [error_type_for(s) for s in (400, 404, 429, 500, 503)] == [
        "invalid_request_error",
        "invalid_request_error",
        "tokens",
        "server_error",
        "server_error",
    ]


def test_gateway_errors_render_in_openai_shape() -> None:
    body = orjson.loads(render_openai(UpstreamUnavailable("openai could not be reached")))
    assert body == {
        "error": {
            "message": "openai could not be reached",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert orjson.loads(render_openai(PayloadTooLarge("too big")))["error"]["type"] == (
        "invalid_request_error"
    )
