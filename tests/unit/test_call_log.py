from __future__ import annotations

import io

import orjson

from gateway.metering.call_log import CallLog
from gateway.metering.calls import CallRecord, Metered
from gateway.wire.usage import Usage


def test_one_json_line_per_call_with_the_documented_fields() -> None:
    out = io.BytesIO()
    call = CallRecord(
        request_id="gw_1",
        provider="anthropic",
        step="synthesis",
        model_requested="claude-sonnet-4-5",
        model_used="claude-sonnet-4-5-20250929",
        status="200",
        duration_s=1.25,
        ttft_s=0.4,
        usage=Usage(input=10, output=20, cache_read=1000, cache_write_5m=30),
        rewrites=("whitespace",),
        findings=("unpinned_model",),
        started_at=1_795_000_000.0,
    )
    log = CallLog(out)
    log.write(call, Metered(0.0123, ("unpinned_model",)))
    log.write(call, Metered(0.0, ()))
    first, second = out.getvalue().splitlines()
    line = orjson.loads(first)
    assert line["request_id"] == "gw_1"
    assert line["time"] == "2026-11-18T11:06:40+00:00"
    assert (line["model_requested"], line["model_used"]) == (
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    )
    assert (line["input_tokens"], line["output_tokens"], line["cache_read_tokens"]) == (
        10,
        20,
        1000,
    )
    assert line["cache_write_5m_tokens"] == 30
    assert (line["latency_ms"], line["ttft_ms"], line["cost_usd"]) == (1250.0, 400.0, 0.0123)
    assert (line["rewrites"], line["findings"], line["status"]) == (
        ["whitespace"],
        ["unpinned_model"],
        "200",
    )
    assert orjson.loads(second)["cost_usd"] == 0.0
