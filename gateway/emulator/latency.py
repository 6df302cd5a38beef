"""The latency model: time to first token grows with uncached input; output at a fixed rate.

Modes: `none` answers at once (tests); `realistic` sleeps the modelled times;
`simulated` sleeps nothing but reports the modelled times in response headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalog import LatencyProfile

TTFT_HEADER = "x-emulator-ttft-ms"
DURATION_HEADER = "x-emulator-duration-ms"


@dataclass(frozen=True, slots=True)
class Timing:
    ttft_s: float
    output_s: float

    @property
    def total_s(self) -> float:
        return self.ttft_s + self.output_s

    def headers(self) -> dict[str, str]:
        return {
            TTFT_HEADER: f"{self.ttft_s * 1000:.1f}",
            DURATION_HEADER: f"{self.total_s * 1000:.1f}",
        }


def model_timing(
    profile: LatencyProfile, uncached_tokens: int, cached_tokens: int, output_tokens: int
) -> Timing:
    """Cache writes are prefilled like uncached input; only reads are cheap."""
    prefill_ms = (
        uncached_tokens * profile.prefill_ms_per_1k
        + cached_tokens * profile.cached_prefill_ms_per_1k
    ) / 1000
    ttft_s = (profile.ttft_base_ms + prefill_ms) / 1000
    return Timing(ttft_s=ttft_s, output_s=output_tokens / profile.output_tokens_per_s)
