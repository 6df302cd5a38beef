"""What one benchmark run measured: a cell per (body, path, mode, concurrency) from wrk, a
probe cell per time-to-first-byte run, the soaks, and the report's other facts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass
class Cell:
    path: str  # direct, floor-<client>, gateway-<transport>[@<commit>], litellm
    mode: str  # json, stream
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    proxy_cpu_ms_per_req: float | None  # the proxy's own CPU
    proxy_core_busy: float | None  # fraction of its core it used during the cell
    load_core_busy: float  # emulator + wrk, fraction of core 0
    wrk_cpu_us_per_req: float
    foreign_cores: float = 0.0  # other processes' CPU during the cell, in cores
    body: str = "filler"


@dataclass
class ProbeCell:
    path: str
    mode: str
    concurrency: int
    samples: int
    errors: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    first_delta_p50_ms: float
    total_p50_ms: float
    total_p99_ms: float
    foreign_cores: float = 0.0
    body: str = "filler"


@dataclass
class Soak:
    transport: str
    requests: int
    seconds: float
    errors: int
    rss_mb: list[tuple[float, float]]  # (fraction of the soak elapsed, MB)

    def at(self, fraction: float) -> float:
        return min(self.rss_mb, key=lambda sample: abs(sample[0] - fraction))[1]


@dataclass
class Report:
    args: dict[str, object]
    environment: dict[str, str]
    cells: list[Cell] = field(default_factory=list)
    probes: list[ProbeCell] = field(default_factory=list)
    rss_after_mb: dict[str, float] = field(default_factory=dict)
    soaks: list[Soak] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)  # cells re-run: the machine was busy
    body_bytes: dict[str, str] = field(default_factory=dict)  # body name → sizes

    def cell(self, path: str, mode: str, concurrency: int, body: str | None = None) -> Cell | None:
        return next(
            (
                c
                for c in self.cells
                if (c.path, c.mode, c.concurrency) == (path, mode, concurrency)
                and body in (None, c.body)
            ),
            None,
        )

    def probe(
        self, path: str, mode: str, concurrency: int, body: str | None = None
    ) -> ProbeCell | None:
        return next(
            (
                p
                for p in self.probes
                if (p.path, p.mode, p.concurrency) == (path, mode, concurrency)
                and body in (None, p.body)
            ),
            None,
        )

    def bodies(self) -> list[str]:
        return list(dict.fromkeys(c.body for c in self.cells))

    def only(self, body: str) -> Report:
        """The cells and probes of one body; the soaks and memory figures of the run (they
        are measured on the first body)."""
        return replace(
            self,
            cells=[c for c in self.cells if c.body == body],
            probes=[p for p in self.probes if p.body == body],
        )
