"""The gateway's overhead targets, judged on one body's cells: PASS, MISS or n/a each."""

from __future__ import annotations

from dataclasses import dataclass

from measure.cells import Report


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    limit: float
    unit: str
    lower_is_better: bool = True

    @property
    def verdict(self) -> str:
        if self.measured is None or self.measured != self.measured:
            return "n/a"
        ok = self.measured <= self.limit if self.lower_is_better else self.measured >= self.limit
        return "PASS" if ok else "MISS"

    def row(self, floor: Target | None = None) -> str:
        """The markdown row; `floor` is the same target measured on a passthrough floor."""
        sign = "≤" if self.lower_is_better else "≥"
        reference = f" {fmt(floor.measured)} {self.unit} |" if floor else ""
        return (
            f"| {self.name} | {sign} {self.limit:g} {self.unit} | "
            f"{fmt(self.measured)} {self.unit} | **{self.verdict}** |{reference}"
        )


def targets(report: Report, path: str) -> list[Target]:
    def added(mode: str, attribute: str) -> float | None:
        through, direct = report.cell(path, mode, 1), report.cell("direct", mode, 1)
        if through is None or direct is None:
            return None
        value: float = getattr(through, attribute) - getattr(direct, attribute)
        return value

    def cell_value(mode: str, concurrency: int, attribute: str) -> float | None:
        cell = report.cell(path, mode, concurrency)
        value: float | None = getattr(cell, attribute) if cell else None
        return value

    through, direct = report.probe(path, "stream", 1), report.probe("direct", "stream", 1)
    added_ttfb = through.ttfb_p50_ms - direct.ttfb_p50_ms if through and direct else None
    transport = path.removeprefix("gateway-")
    soak = next((s for s in report.soaks if s.transport == transport), None)
    flat = None
    if soak is not None:
        base = soak.rss_mb[0][1]
        flat = max(abs(mb - base) / base * 100 for _, mb in soak.rss_mb)
    rss = report.rss_after_mb.get(path)
    if soak is not None:
        rss = max([rss or 0.0, *(mb for _, mb in soak.rss_mb)])
    return [
        Target("added latency c=1 p50, JSON", added("json", "p50_ms"), 0.5, "ms"),
        Target("added latency c=1 p99, JSON", added("json", "p99_ms"), 1.0, "ms"),
        Target("added latency c=1 p50, stream", added("stream", "p50_ms"), 0.5, "ms"),
        Target("added latency c=1 p99, stream", added("stream", "p99_ms"), 1.0, "ms"),
        Target("added TTFB c=1 p50, stream", added_ttfb, 0.5, "ms"),
        Target(
            "CPU per JSON request (c=64)", cell_value("json", 64, "proxy_cpu_ms_per_req"), 0.4, "ms"
        ),
        Target(
            "CPU per stream (c=64)", cell_value("stream", 64, "proxy_cpu_ms_per_req"), 0.6, "ms"
        ),
        Target("c=64 JSON throughput", cell_value("json", 64, "rps"), 2500, "req/s", False),
        Target("c=64 JSON p99", cell_value("json", 64, "p99_ms"), 100, "ms"),
        Target("c=64 stream throughput", cell_value("stream", 64, "rps"), 1600, "streams/s", False),
        Target("c=64 stream p99", cell_value("stream", 64, "p99_ms"), 100, "ms"),
        Target("RSS drift across the soak", flat, 10, "%"),
        Target("RSS peak", rss, 150, "MB"),
    ]
