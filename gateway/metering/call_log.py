"""The call log: one JSON line per model call, for operators. Never any prompt text.

To stdout (the default: a container's log), to a file (appended), or off.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import IO

import orjson

from gateway.metering.calls import CallRecord, Metered


class CallLog:
    def __init__(self, out: IO[bytes] | None) -> None:
        self._out = out

    @classmethod
    def open(cls, target: str) -> CallLog:
        """`stdout`, `off`, or a file path to append to."""
        if target == "off":
            return cls(None)
        if target == "stdout":
            return cls(sys.stdout.buffer)
        return cls(open(target, "ab"))  # held open for the life of the process

    def write(self, call: CallRecord, metered: Metered) -> None:
        if self._out is None:
            return
        usage = call.usage
        line = {
            "request_id": call.request_id,
            "time": dt.datetime.fromtimestamp(call.started_at, dt.UTC).isoformat(),
            "provider": call.provider,
            "model_requested": call.model_requested,
            "model_used": call.model_used,
            "step": call.step,
            "tier": call.tier,
            "key": call.key,
            "input_tokens": usage.input if usage else 0,
            "output_tokens": usage.output if usage else 0,
            "cache_read_tokens": usage.cache_read if usage else 0,
            "cache_write_5m_tokens": usage.cache_write_5m if usage else 0,
            "cache_write_1h_tokens": usage.cache_write_1h if usage else 0,
            "latency_ms": round(call.duration_s * 1000, 3),
            "ttft_ms": None if call.ttft_s is None else round(call.ttft_s * 1000, 3),
            "cost_usd": round(metered.cost_usd, 8),
            "rewrites": call.rewrites,
            "findings": metered.findings,
            "cache_miss_cause": call.cache.cause if call.cache else None,
            "coalesced": call.coalesced,
            "status": call.status,
            "budget_breaches": call.budget_breaches,
            "attempts": [
                {
                    "model": attempt.model,
                    "status": attempt.status,
                    "latency_ms": round(attempt.duration_s * 1000, 3),
                    "hedge": attempt.hedge,
                    "relayed": attempt.relayed,
                }
                for attempt in call.attempts
            ]
            if len(call.attempts) > 1
            else [],
        }
        self._out.write(orjson.dumps(line) + b"\n")
        self._out.flush()
