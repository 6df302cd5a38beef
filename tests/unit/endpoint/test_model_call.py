"""A model call in-process, from the client's request to the call log: headers, the bytes
relayed, the record metering gets and the metrics, against a scripted upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.metering.pricing import Pricing
from tests.unit.endpoint.harness import (
    ANTHROPIC,
    MODEL,
    OPENAI,
    anthropic_message,
    anthropic_stream,
    json_reply,
    message_request,
    run,
    sse,
    streamed,
)

JSON = {**ANTHROPIC, "content-type": "application/json"}
LABELS = {"provider": "anthropic", "model": MODEL, "step": "none"}


def test_a_json_reply_reaches_the_client_as_upstream_sent_it_with_the_gateway_headers(
    tmp_path: Path,
) -> None:
    upstream_body = anthropic_message("Hello there")
    result = run(
        tmp_path,
        [lambda _: json_reply(upstream_body)],
        [("POST", "/v1/messages", JSON, message_request())],
    )
    (response,) = result.responses
    assert response.status_code == 200
    assert orjson.loads(response.content) == upstream_body
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["x-gateway-request-id"].startswith("gw_")
    assert response.headers["x-gateway-model"] == MODEL
    assert response.headers["request-id"] == "req_up"
    assert float(response.headers["x-gateway-cost-usd"]) > 0
    # The client's key goes upstream; the body as the rewrites left it.
    assert result.upstream.requests[0].headers["x-api-key"] == "sk-ant-test"
    assert result.upstream.sent()["model"] == MODEL
    (call,) = result.calls
    assert call["request_id"] == response.headers["x-gateway-request-id"]
    assert (call["status"], call["model_used"], call["input_tokens"]) == ("200", MODEL, 10)
    assert call["cost_usd"] == float(response.headers["x-gateway-cost-usd"])
    assert result.metric("gateway_requests_total", **LABELS, status="200") == 1
    assert result.metric("gateway_tokens_total", **LABELS, type="output") == 5


def test_a_stream_is_relayed_byte_for_byte_and_its_usage_metered(tmp_path: Path) -> None:
    chunks = anthropic_stream("streamed", output_tokens=7)
    result = run(
        tmp_path,
        [lambda _: streamed(chunks)],
        [("POST", "/v1/messages", JSON, message_request(stream=True))],
    )
    (response,) = result.responses
    assert response.status_code == 200
    assert response.content == b"".join(chunks)
    assert "content-length" not in response.headers
    assert response.headers["x-gateway-model"] == MODEL
    (call,) = result.calls
    assert (call["status"], call["output_tokens"], call["input_tokens"]) == ("200", 7, 10)
    assert call["ttft_ms"] is not None
    assert result.metric("gateway_time_to_first_token_seconds_count", **LABELS) == 1


def test_a_stream_cut_midway_ends_with_an_error_event_and_is_metered_as_cut(
    tmp_path: Path,
) -> None:
    chunks = anthropic_stream()[:3]  # through the first text delta
    result = run(
        tmp_path,
        [lambda _: streamed(chunks, cut=True)],
        [("POST", "/v1/messages", JSON, message_request(stream=True))],
    )
    (response,) = result.responses
    assert response.content.startswith(b"".join(chunks))
    tail = response.content[len(b"".join(chunks)) :]
    assert tail.startswith(b"event: error\n")
    assert b"mid-stream" in tail
    (call,) = result.calls
    assert call["status"] == "cut"
    assert result.metric("gateway_upstream_errors_total", provider="anthropic", status="cut") == 1


def test_an_upstream_error_is_relayed_and_a_failed_attempt_retried(tmp_path: Path) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    invalid = {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
    result = run(
        tmp_path,
        [
            lambda _: json_reply(overloaded, 529),
            lambda _: json_reply(anthropic_message()),
            lambda _: json_reply(invalid, 400),
        ],
        [("POST", "/v1/messages", JSON, message_request())] * 2,
        routing={"retries": {"base_delay_s": 0}},
    )
    retried, refused = result.responses
    assert retried.status_code == 200
    assert refused.status_code == 400
    assert orjson.loads(refused.content) == invalid  # not retried: the client's to fix
    assert len(result.upstream.requests) == 3
    assert [a["status"] for a in result.calls[0]["attempts"]] == ["529", "200"]
    assert result.metric("gateway_retries_total", provider="anthropic") == 1
    assert result.metric("gateway_requests_total", **LABELS, status="400") == 1


def test_a_body_that_is_not_json_is_refused_in_the_callers_envelope_without_a_call(
    tmp_path: Path,
) -> None:
    result = run(
        tmp_path,
        [lambda _: json_reply(anthropic_message())],
        [
            ("POST", "/v1/messages", JSON, b"{not json"),
            ("POST", "/v1/chat/completions", {**OPENAI, "content-type": "application/json"}, b"[]"),
        ],
    )
    anthropic, openai = result.responses
    assert anthropic.status_code == openai.status_code == 400
    assert orjson.loads(anthropic.content)["error"]["type"] == "invalid_request_error"
    assert orjson.loads(openai.content)["error"]["message"].endswith("a JSON object.")
    assert openai.headers["x-request-id"] == openai.headers["x-gateway-request-id"]
    assert result.upstream.requests == []
    assert [call["status"] for call in result.calls] == ["400", "400"]


def test_rewrites_are_named_in_a_header_and_the_rewritten_body_goes_upstream(
    tmp_path: Path,
) -> None:
    messages = [{"role": "user", "content": "Hello   \n\n\n\nthere   "}]
    result = run(
        tmp_path,
        [lambda _: json_reply(anthropic_message())],
        [("POST", "/v1/messages", JSON, message_request(messages=messages))],
    )
    (response,) = result.responses
    rules = response.headers["x-gateway-rewrites"].split(",")
    assert "whitespace" in rules
    assert result.upstream.sent()["messages"][0]["content"] != messages[0]["content"]
    assert result.calls[0]["rewrites"] == rules
    assert result.metric("gateway_rewrites_total", rule="whitespace") == 1


def test_an_openai_stream_is_asked_for_its_usage_and_the_client_does_not_see_it(
    tmp_path: Path,
) -> None:
    model = "gpt-4.1-mini"
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": model}
    delta = {**chunk, "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    usage = {
        **chunk,
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    chunks = [*sse((None, delta), (None, usage)), b"data: [DONE]\n\n"]
    body = orjson.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hello"}]}
    )
    result = run(
        tmp_path,
        [lambda _: streamed(chunks)],
        [("POST", "/v1/chat/completions", {**OPENAI, "content-type": "application/json"}, body)],
    )
    (response,) = result.responses
    assert result.upstream.sent()["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in response.content  # the client did not ask for it
    assert b"Hi" in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")
    (call,) = result.calls
    assert (call["input_tokens"], call["output_tokens"]) == (12, 3)


def test_pass_through_paths_are_relayed_as_they_come(tmp_path: Path) -> None:
    models = {"data": [{"id": MODEL, "type": "model"}], "has_more": False}
    counted = {"input_tokens": 42}
    result = run(
        tmp_path,
        [lambda r: json_reply(models if r.method == "GET" else counted)],
        [
            ("GET", "/v1/models", ANTHROPIC, b""),
            ("POST", "/v1/messages/count_tokens", JSON, message_request()),
        ],
    )
    listed, tokens = result.responses
    assert orjson.loads(listed.content) == models
    assert orjson.loads(tokens.content) == counted
    assert listed.headers["x-gateway-request-id"].startswith("gw_")
    assert [r.url.path for r in result.upstream.requests] == [
        "/v1/models",
        "/v1/messages/count_tokens",
    ]
    assert "x-gateway-rewrites" not in tokens.headers
    assert [call["status"] for call in result.calls] == ["200", "200"]


def test_a_stream_past_its_time_limit_ends_with_the_wires_error_event(tmp_path: Path) -> None:
    def stalled(_: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for chunk in anthropic_stream()[:3]:
                yield chunk
            await asyncio.Event().wait()  # never ends: the deadline stops it
            yield b""

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    result = run(
        tmp_path,
        [stalled],
        [("POST", "/v1/messages", JSON, message_request(stream=True))],
        providers={"anthropic": {"base_url": "http://upstream", "stream_timeout_s": 0.2}},
    )
    (response,) = result.responses
    assert response.status_code == 200  # the headers had gone: the stream itself says it
    assert response.content.startswith(b"".join(anthropic_stream()[:3]))
    assert b"time limit of 0.2 s" in response.content
    assert result.calls[0]["status"] == "504"


def test_a_shadow_pair_gets_the_primary_answer_the_observers_saw(tmp_path: Path) -> None:
    shadow_model = "claude-haiku-4-5"

    def reply(request: httpx.Request) -> httpx.Response:
        model = orjson.loads(request.content)["model"]
        return json_reply({**anthropic_message(f"from {model}"), "model": model})

    step = {"watched": {"shadow": {"model": shadow_model, "sample": 1.0}}}
    result = run(
        tmp_path,
        [reply],
        [("POST", "/v1/messages", {**JSON, "x-gateway-step": "watched"}, message_request())],
        routing={"steps": step},
    )
    assert sorted(orjson.loads(r.content)["model"] for r in result.upstream.requests) == sorted(
        [MODEL, shadow_model]
    )
    (pair,) = [orjson.loads(line) for line in (tmp_path / "shadow.jsonl").read_bytes().splitlines()]
    (record,) = result.records
    assert pair["request_id"] == record.call.request_id
    assert pair["primary"]["text"] == f"from {MODEL}"
    assert pair["primary"]["cost_usd"] == record.metered.cost_usd
    assert pair["shadow"]["model"] == shadow_model
    assert pair["shadow"]["text"] == f"from {shadow_model}"


def test_a_json_reply_is_priced_once_for_its_header_and_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    priced: list[float | None] = []
    cost = Pricing.cost

    def counted(self: Pricing, *args: Any, **kwargs: Any) -> float | None:
        priced.append(cost(self, *args, **kwargs))
        return priced[-1]

    monkeypatch.setattr(Pricing, "cost", counted)
    result = run(
        tmp_path,
        [lambda _: json_reply(anthropic_message("Hello there"))],
        [("POST", "/v1/messages", JSON, message_request())],
    )
    (response,) = result.responses
    (call,) = result.calls
    assert len(priced) == 1
    assert priced[0] is not None
    assert call["cost_usd"] == float(response.headers["x-gateway-cost-usd"]) == round(priced[0], 6)
