"""A call's line in the call log, byte for byte (but for its id, time and latencies), on the
paths where a call fails or is answered by another attempt than the first: an upstream 4xx, a
529 retried until the attempts run out, a read timeout, a stream cut, a fallback (JSON and
stream), an OpenAI 500; and the metrics they add. A change to how a call is metered or logged
shows here as a changed line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.unit.endpoint.harness import (
    ANTHROPIC,
    MODEL,
    OPENAI,
    Reply,
    anthropic_message,
    anthropic_stream,
    json_reply,
    message_request,
    run,
    streamed,
)

JSON = {**ANTHROPIC, "content-type": "application/json"}
STEP = {**JSON, "x-gateway-step": "s"}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
REFUSED = {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
RETRIES = {"retries": {"base_delay_s": 0, "attempts_per_model": 2}}
FALLBACK = {
    "retries": {"base_delay_s": 0, "attempts_per_model": 1},
    "steps": {"s": {"fallbacks": ["claude-haiku-4-5"]}},
}
HEAD = (
    '{"request_id":"X","time":"X","provider":"anthropic","model_requested":"claude-sonnet-4-6",'
    '"model_used":"claude-sonnet-4-6",'
)
NONE = '"cache_read_tokens":0,"cache_write_5m_tokens":0,"cache_write_1h_tokens":0,"latency_ms":0,'
BELOW = '"rewrites":[],"findings":["prefix_below_minimum"],'


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def _first_overloaded(stream: bool) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        if orjson.loads(request.content)["model"] == MODEL:
            return json_reply(OVERLOADED, 529)
        return streamed(anthropic_stream()) if stream else json_reply(anthropic_message())

    return reply


def _attempt(model: str, status: str, relayed: bool) -> str:
    flag = "true" if relayed else "false"
    return (
        f'{{"model":"{model}","status":"{status}","latency_ms":0,"hedge":false,"relayed":{flag}}}'
    )


RETRIED_529 = _attempt(MODEL, "529", False) + "," + _attempt(MODEL, "529", True)
FELL_BACK = _attempt(MODEL, "529", False) + "," + _attempt("claude-haiku-4-5-20251001", "200", True)
CASES: dict[str, tuple[list[Reply], dict[str, str], bytes, dict[str, Any], str]] = {
    "4xx": (
        [lambda _: json_reply(REFUSED, 400)],
        JSON,
        message_request(),
        {},
        HEAD + '"step":null,"tier":null,"key":null,"input_tokens":0,"output_tokens":0,' + NONE
        + '"ttft_ms":null,"cost_usd":0.0,' + BELOW + '"cache_miss_cause":null,"coalesced":false,'
        '"status":"400","budget_breaches":[],"attempts":[]}',
    ),
    "529 retried out": (
        [lambda _: json_reply(OVERLOADED, 529)],
        JSON,
        message_request(),
        RETRIES,
        HEAD + '"step":null,"tier":null,"key":null,"input_tokens":0,"output_tokens":0,' + NONE
        + '"ttft_ms":null,"cost_usd":0.0,' + BELOW + '"cache_miss_cause":null,"coalesced":false,'
        '"status":"529","budget_breaches":[],"attempts":[' + RETRIED_529 + "]}",
    ),
    "read timeout": (
        [_timeout],
        JSON,
        message_request(),
        RETRIES,
        HEAD + '"step":null,"tier":null,"key":null,"input_tokens":0,"output_tokens":0,' + NONE
        + '"ttft_ms":null,"cost_usd":0.0,' + BELOW + '"cache_miss_cause":null,"coalesced":false,'
        '"status":"504","budget_breaches":[],"attempts":[]}',
    ),
    "stream cut": (
        [lambda _: streamed(anthropic_stream()[:3], cut=True)],
        JSON,
        message_request(stream=True),
        {},
        HEAD + '"step":null,"tier":null,"key":null,"input_tokens":10,"output_tokens":1,' + NONE
        + '"ttft_ms":0,"cost_usd":0.000045,' + BELOW + '"cache_miss_cause":"below_minimum",'
        '"coalesced":false,"status":"cut","budget_breaches":[],"attempts":[]}',
    ),
    "fallback": (
        [_first_overloaded(stream=False)],
        STEP,
        message_request(),
        FALLBACK,
        HEAD + '"step":"s","tier":null,"key":null,"input_tokens":10,"output_tokens":5,' + NONE
        + '"ttft_ms":null,"cost_usd":0.000105,' + BELOW + '"cache_miss_cause":"below_minimum",'
        '"coalesced":false,"status":"200","budget_breaches":[],"attempts":[' + FELL_BACK + "]}",
    ),
    "stream fallback": (
        [_first_overloaded(stream=True)],
        STEP,
        message_request(stream=True),
        FALLBACK,
        HEAD + '"step":"s","tier":null,"key":null,"input_tokens":10,"output_tokens":5,' + NONE
        + '"ttft_ms":0,"cost_usd":0.000105,' + BELOW + '"cache_miss_cause":"below_minimum",'
        '"coalesced":false,"status":"200","budget_breaches":[],"attempts":[' + FELL_BACK + "]}",
    ),
    "openai 500": (
        [lambda _: json_reply({"error": {"message": "x", "type": "server_error"}}, 500)],
        {**OPENAI, "content-type": "application/json"},
        orjson.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}),
        RETRIES,
        '{"request_id":"X","time":"X","provider":"openai","model_requested":"gpt-5",'
        '"model_used":"gpt-5-2025-08-07","step":null,"tier":null,"key":null,"input_tokens":0,'
        '"output_tokens":0,' + NONE + '"ttft_ms":null,"cost_usd":0.0,'
        '"rewrites":["pin","prompt_cache_key"],"findings":[],"cache_miss_cause":null,'
        '"coalesced":false,"status":"500","budget_breaches":[],"attempts":['
        + _attempt("gpt-5-2025-08-07", "500", False) + ","
        + _attempt("gpt-5-2025-08-07", "500", True) + "]}",
    ),
}  # fmt: skip


def _normalized(line: bytes) -> str:
    text = line.decode()
    text = re.sub(r'"request_id":"[^"]*"', '"request_id":"X"', text)
    text = re.sub(r'"time":"[^"]*"', '"time":"X"', text)
    return re.sub(r'"(latency_ms|ttft_ms)":[0-9.e-]+', r'"\1":0', text)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_or_fallen_back_calls_line_is_as_logged(tmp_path: Path, case: str) -> None:
    replies, headers, body, routing, expected = CASES[case]
    path = "/v1/chat/completions" if "openai" in case else "/v1/messages"
    result = run(tmp_path, replies, [("POST", path, headers, body)], routing=routing)
    lines = (tmp_path / "calls.jsonl").read_bytes().splitlines()
    assert [_normalized(line) for line in lines] == [expected]
    provider, model = orjson.loads(lines[0])["provider"], orjson.loads(lines[0])["model_used"]
    step = "other" if orjson.loads(lines[0])["step"] else "none"  # not a configured step
    status = orjson.loads(lines[0])["status"]
    labels = {"provider": provider, "model": model, "step": step}
    assert result.metric("gateway_requests_total", **labels, status=status) == 1
    assert result.metric("gateway_request_duration_seconds_count", **labels) == 1
