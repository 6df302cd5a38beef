"""The emulator's paced/fault responder, shared by both providers: what it sends, and when,
read off the response it builds (no server, no sleeping)."""

from __future__ import annotations

import pytest

from gateway.catalog import LatencyProfile
from gateway.emulator.anthropic.cache import CacheUsage
from gateway.emulator.faults import Fault
from gateway.emulator.latency import Timing
from gateway.emulator.pacing import StreamCounter
from gateway.emulator.respond import Responder
from gateway.settings import EmulatorSettings, LatencyMode

PROFILE = LatencyProfile(
    ttft_base_ms=100, prefill_ms_per_1k=10, cached_prefill_ms_per_1k=1, output_tokens_per_s=50
)
TIMING = Timing(ttft_s=0.5, output_s=2.0)
EVENTS = [(b"a", 1), (b"b", 5), (b"c", 0), (b"d", 2)]


def responder(latency: LatencyMode = "none", slow_fault_ms: int = 2000) -> Responder:
    settings = EmulatorSettings(latency=latency, slow_fault_ms=slow_fault_ms)
    return Responder(settings, StreamCounter())


def test_json_sends_the_body_with_its_length_at_once_without_realistic_latency() -> None:
    response = responder("simulated").json({"x": "1"}, b'{"ok":true}', TIMING, None)
    assert response.chunks == [(b'{"ok":true}', 0.0)]
    assert response.delay_s == 0.0
    assert (b"content-length", b"11") in response.headers
    assert (b"content-type", b"application/json") in response.headers


def test_realistic_json_waits_the_first_token_then_the_whole_output() -> None:
    response = responder("realistic").json({}, b"{}", TIMING, None)
    assert response.delay_s == 0.5
    assert response.chunks == [(b"{}", 2.0)]


def test_a_cut_json_body_sends_its_first_half_only_and_no_length() -> None:
    response = responder().json({}, b"0123456789", TIMING, Fault(kind="cut"))
    assert response.chunks == [(b"01234", 0.0), (b"56789", 0.0)]
    assert response.cut_after == 1
    assert not any(name == b"content-length" for name, _ in response.headers)


def test_a_realistic_stream_paces_each_event_by_its_output_tokens() -> None:
    response = responder("realistic").stream({}, EVENTS, TIMING, PROFILE, None)
    assert [wait for _, wait in response.chunks] == pytest.approx([0.02, 0.1, 0.0, 0.04])
    assert (b"content-type", b"text/event-stream; charset=utf-8") in response.headers
    assert response.cut_after is None


def test_a_cut_stream_drops_the_connection_halfway() -> None:
    response = responder().stream({}, EVENTS, TIMING, PROFILE, Fault(kind="cut"))
    assert response.cut_after == 2
    assert [wait for _, wait in response.chunks] == [0.0] * 4


def test_a_slow_fault_delays_the_head_by_its_own_ms_or_the_configured_default() -> None:
    slow = responder(slow_fault_ms=1500)
    assert slow.json({}, b"{}", TIMING, Fault(kind="slow")).delay_s == 1.5
    assert slow.json({}, b"{}", TIMING, Fault(kind="slow", ms=250)).delay_s == 0.25
    assert responder("realistic").json(
        {}, b"{}", TIMING, Fault(kind="slow", ms=250)
    ).delay_s == pytest.approx(0.75)


def test_the_response_begins_after_the_modelled_first_token_unless_latency_is_none() -> None:
    usage = CacheUsage(
        input_tokens=1000, cache_read_input_tokens=2000, cache_creation_5m=1000, cache_creation_1h=0
    )
    # 100 ms base + 2,000 uncached tokens at 10 ms/1k + 2,000 cached at 1 ms/1k = 122 ms
    assert responder("simulated").start_at(10.0, None, PROFILE)(usage) == pytest.approx(10.122)
    assert responder("none").start_at(10.0, Fault(kind="slow", ms=300), PROFILE)(
        usage
    ) == pytest.approx(10.3)
