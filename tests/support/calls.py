"""One synthesis call on Sonnet 4.5, as the call log and the tracer tests both see it."""

from __future__ import annotations

from typing import Any

from gateway.metering.calls import CallRecord


def sonnet_call(**fields: Any) -> CallRecord:
    return CallRecord(
        **{
            "request_id": "gw_1",
            "provider": "anthropic",
            "step": "synthesis",
            "model_requested": "claude-sonnet-4-5",
            "model_used": "claude-sonnet-4-5-20250929",
            "status": "200",
            "started_at": 1_795_000_000.0,
            **fields,
        }
    )
