from __future__ import annotations

import datetime as dt
import io
import random
import threading

import orjson

from gateway.metering.call_log import CallLog, iso_time
from gateway.metering.calls import CallRecord, Metered
from gateway.wire.usage import Usage
from tests.support.calls import sonnet_call


def test_one_json_line_per_call_with_the_documented_fields() -> None:
    out = io.BytesIO()
    call = sonnet_call(
        duration_s=1.25,
        ttft_s=0.4,
        usage=Usage(input=10, output=20, cache_read=1000, cache_write_5m=30),
        rewrites=("whitespace",),
        findings=("unpinned_model",),
    )
    log = CallLog(out)
    log.write(call, Metered(0.0123, ("unpinned_model",)))
    log.write(call, Metered(0.0, ()))
    assert log.close(timeout_s=10)  # the writer thread has written everything queued
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


class StalledOutput:
    """An output that takes nothing until released (a pipe nobody reads), then everything."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.released.wait(30)
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


def test_a_stalled_output_never_blocks_the_caller_lines_past_the_queue_are_dropped() -> None:
    call = CallRecord("gw_1", "anthropic", None, "m", "m", "200", 0.1, None, None)
    output = StalledOutput()
    drops: list[None] = []
    log = CallLog(output, max_queue_bytes=4096, on_drop=lambda: drops.append(None))  # type: ignore[arg-type]
    for _ in range(100):  # ~500 bytes a line: the writer holds one batch, the queue ~8 lines
        log.write(call, Metered(0.0, ()))
    assert 0 < log.dropped < 100
    assert len(drops) == log.dropped
    output.released.set()
    assert log.close(timeout_s=10)
    lines = bytes(output.data).splitlines()
    assert len(lines) == 100 - log.dropped
    assert all(orjson.loads(line)["request_id"] == "gw_1" for line in lines)


def test_close_waits_a_bounded_time_for_a_stalled_output() -> None:
    call = CallRecord("gw_1", "anthropic", None, "m", "m", "200", 0.1, None, None)
    output = StalledOutput()
    log = CallLog(output)  # type: ignore[arg-type]
    log.write(call, Metered(0.0, ()))
    assert not log.close(timeout_s=0.2)  # the writer is still stuck: close gives up
    output.released.set()


class Writes:
    """An output that keeps each write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.wrote = threading.Event()

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        self.wrote.set()
        return len(data)

    def flush(self) -> None:
        pass


def test_lines_are_written_in_batches_once_enough_are_waiting_or_at_close() -> None:
    call = CallRecord("gw_1", "anthropic", None, "m", "m", "200", 0.1, None, None)
    output = Writes()
    # A batch is half the queue here (2 KB, ~5 lines); the linger would outlast the test.
    log = CallLog(output, max_queue_bytes=4096, linger_s=3600)  # type: ignore[arg-type]
    line = len(CallLog._line(call, Metered(0.0, ())))
    batch = -(-2048 // line)  # lines until 2 KB are waiting
    for _ in range(batch):
        log.write(call, Metered(0.0, ()))
    assert output.wrote.wait(30)  # the batch is written without waiting out the linger
    log.write(call, Metered(0.0, ()))
    assert log.close(timeout_s=10)
    assert [len(data.splitlines()) for data in output.writes] == [batch, 1]


def test_the_time_is_datetime_isoformat_to_the_microsecond_rounding_included() -> None:
    rng = random.Random(16)
    times = [rng.uniform(0, 2e9) for _ in range(5000)]
    base = 1763464000  # the same second many times: its formatted date and time reused
    times += [base + rng.randrange(10**6) / 1e6 + rng.choice((0, 5e-7, -5e-7)) for _ in range(5000)]
    times += [base, base + 0.9999996, base + 0.0000004, base + 0.1234565, 0.0, -1.5]
    for at in times:
        assert iso_time(at) == dt.datetime.fromtimestamp(at, dt.UTC).isoformat(), at


def _line_reference(call: CallRecord, metered: Metered) -> bytes:
    """The line as it was built before the record was unpacked at once."""
    usage = call.usage
    line = {
        "request_id": call.request_id,
        "time": iso_time(call.started_at),
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
    return orjson.dumps(line) + b"\n"


def test_the_line_equals_the_former_field_by_field_line_over_a_grid() -> None:
    from gateway.cache.registry import Verdict
    from gateway.wire.call import Attempt

    rng = random.Random(23)
    usages = [None, Usage(), Usage(1, 2, 3, 4, 5), Usage(input=10**9, output=7)]
    verdicts = [None, Verdict(None, 0, ()), Verdict("ttl_expired", 12, ())]
    attempt_sets: list[tuple[Attempt, ...]] = [
        (),
        (Attempt("m", "200", 0.1234567, relayed=True),),
        (Attempt("a", "529", 0.5), Attempt("b", "200", 1.0000005, hedge=True, relayed=True)),
    ]
    for _ in range(3000):
        call = sonnet_call(
            request_id=rng.choice(["gw_1", 'gw_\u00e9"x']),
            step=rng.choice([None, "synthesis"]),
            model_requested=rng.choice([None, "claude-sonnet-4-5"]),
            model_used=rng.choice([None, "claude-sonnet-4-5-20250929"]),
            status=rng.choice(["200", "cut", "529"]),
            duration_s=rng.choice([0.0, 1.25, rng.uniform(0, 100), 0.0005, 1e-9]),
            ttft_s=rng.choice([None, 0.0, rng.uniform(0, 10)]),
            usage=rng.choice(usages),
            rewrites=rng.choice([(), ("whitespace", "pin")]),
            cache=rng.choice(verdicts),
            coalesced=rng.random() < 0.5,
            started_at=rng.uniform(0, 2e9),
            tier=rng.choice([None, "fast"]),
            attempts=rng.choice(attempt_sets),
            budget_breaches=rng.choice([(), ("ttft",)]),
            key=rng.choice([None, "team-a"]),
        )
        metered = Metered(rng.choice([0.0, rng.uniform(0, 5), 1.5e-9]), rng.choice([(), ("x",)]))
        assert CallLog._line(call, metered) == _line_reference(call, metered)
