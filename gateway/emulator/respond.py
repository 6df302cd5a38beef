"""The paced, fault-injected answer of every provider's generation endpoint.

A provider adapter composes its answer (the JSON body, or the stream's events with the
output tokens each carries, already ending in its own error event under a `stream-error`
fault) and the responder sends it as the latency mode and the request's fault ask: `slow`
delays the head, `cut` drops the connection halfway, `realistic` sleeps the modelled
times, `none` and `simulated` send at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.catalog import LatencyProfile
from gateway.emulator.faults import Fault
from gateway.emulator.latency import Timing, model_timing
from gateway.emulator.pacing import PacedResponse, StreamCounter
from gateway.settings import EmulatorSettings


class Prefill(Protocol):
    """A request's input tokens as the latency model prices them (each provider's cache usage)."""

    @property
    def uncached_tokens(self) -> int: ...

    @property
    def cached_tokens(self) -> int: ...


def usage_timing(latency: LatencyProfile, usage: Prefill, output_tokens: int) -> Timing:
    return model_timing(latency, usage.uncached_tokens, usage.cached_tokens, output_tokens)


class Responder:
    def __init__(self, settings: EmulatorSettings, streams: StreamCounter) -> None:
        self.settings = settings
        self.streams = streams

    def slow_s(self, fault: Fault | None) -> float:
        """The head's extra delay under a `slow` fault (its `ms`, else the configured one)."""
        if fault is None or fault.kind != "slow":
            return 0.0
        return (fault.ms if fault.ms is not None else self.settings.slow_fault_ms) / 1000

    def start_at(
        self, now: float, fault: Fault | None, latency: LatencyProfile
    ) -> Callable[[Prefill], float]:
        """When a response to a request at `now` begins, given its input tokens: a prompt
        cache entry is readable from then on. Latency `none` begins at once."""
        slow_s = self.slow_s(fault)
        if self.settings.latency == "none":
            return lambda usage: now + slow_s
        return lambda usage: now + slow_s + usage_timing(latency, usage, 0).ttft_s

    def stream(
        self,
        headers: dict[str, str],
        events: Sequence[tuple[bytes, int]],
        timing: Timing,
        latency: LatencyProfile,
        fault: Fault | None,
    ) -> PacedResponse:
        """Server-sent events, each after its output tokens' time in `realistic` mode."""
        per_token_s = 1 / latency.output_tokens_per_s if self._sleeps else 0.0
        chunks = [(chunk, tokens * per_token_s) for chunk, tokens in events]
        cut = len(chunks) // 2 if fault is not None and fault.kind == "cut" else None
        headers = {
            **headers,
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
        }
        return self._paced(headers, chunks, timing, fault, cut)

    def json(
        self, headers: dict[str, str], payload: bytes, timing: Timing, fault: Fault | None
    ) -> PacedResponse:
        """One JSON body after the whole output's time in `realistic` mode; under `cut`,
        its first half and no more."""
        headers = {**headers, "content-type": "application/json"}
        if fault is not None and fault.kind == "cut":
            half = len(payload) // 2
            return self._paced(
                headers, [(payload[:half], 0.0), (payload[half:], 0.0)], timing, fault, 1
            )
        wait_s = timing.output_s if self._sleeps else 0.0
        headers["content-length"] = str(len(payload))
        return self._paced(headers, [(payload, wait_s)], timing, fault, None)

    @property
    def _sleeps(self) -> bool:
        return self.settings.latency == "realistic"

    def _paced(
        self,
        headers: dict[str, str],
        chunks: Sequence[tuple[bytes, float]],
        timing: Timing,
        fault: Fault | None,
        cut_after: int | None,
    ) -> PacedResponse:
        delay_s = self.slow_s(fault) + (timing.ttft_s if self._sleeps else 0.0)
        return PacedResponse(
            200, headers, chunks, delay_s=delay_s, counter=self.streams, cut_after=cut_after
        )
