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
