"""The cost report: the table, the targets, the per-position breakdown, the plot."""

from __future__ import annotations

import math
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from harness.proxies import REPO
from harness.stats import percentile

from costing.config import (
    LABELS,
    ROUTES,
    TARGET_CASCADE_SHARE,
    TARGET_COST_SHARE,
    TARGET_HIT_RATIO,
    WORKLOADS,
)
from costing.measure import Replay, Result, Usage


def tokens_per_day(n: int, scale: float) -> str:
    per_day = n / scale
    return f"{per_day / 1e6:.2f}M" if per_day >= 1e6 else f"{per_day / 1e3:.0f}K"


def table(replays: list[Replay]) -> list[str]:
    lines = [
        "| workload | route | $/day | hit ratio | input | output | cache_read | cache_write_5m"
        " | cache_write_1h | TTFT p50 | TTFT p95 | savings |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    naive = {r.workload: r.cost_per_day for r in replays if r.route == "direct"}
    for r in replays:
        u, s = r.usage, r.scale
        saving = 1 - r.cost_per_day / naive[r.workload] if r.workload in naive else math.nan
        lines.append(
            f"| {WORKLOADS[r.workload].TITLE if r.route == 'direct' else ''} | {r.route}"
            f" | ${r.cost_per_day:,.2f} | {u.hit_ratio:.1%} | {tokens_per_day(u.input, s)}"
            f" | {tokens_per_day(u.output, s)} | {tokens_per_day(u.cache_read, s)}"
            f" | {tokens_per_day(u.cache_write_5m, s)} | {tokens_per_day(u.cache_write_1h, s)}"
            f" | {r.ttft(50):,.0f} ms | {r.ttft(95):,.0f} ms"
            f" | {'—' if r.route == 'direct' else f'{saving:.1%}'} |"
        )
    return lines


def breakdown(replays: list[Replay]) -> list[str]:
    """Per position in the chain (turn, step, sub-call): mean tokens by type."""
    lines = [
        "| workload | position | route | input | cache_read | cache_write | hit ratio | TTFT p50 |",
        "|---|---|---|--:|--:|--:|--:|--:|",
    ]
    for name in dict.fromkeys(r.workload for r in replays):
        by_position: dict[str, dict[str, list[Result]]] = defaultdict(lambda: defaultdict(list))
        for r in (r for r in replays if r.workload == name):
            for result in r.results:
                by_position[result.call.position][r.route].append(result)
        for position in sorted(by_position):
            for route, results in by_position[position].items():
                u = sum((x.usage for x in results), Usage())
                n = len(results)
                p50 = percentile([x.ttft_ms for x in results], 50)
                lines.append(
                    f"| {name} | {position} | {route} | {u.input / n:,.0f}"
                    f" | {u.cache_read / n:,.0f}"
                    f" | {(u.cache_write_5m + u.cache_write_1h) / n:,.0f}"
                    f" | {u.hit_ratio:.1%} | {p50:,.0f} ms |"
                )
    return lines


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    met: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.met else 'MISS'}  {self.name}: {self.detail}"


def targets(replays: list[Replay]) -> list[Goal]:
    found = {(r.workload, r.route): r for r in replays}
    out: list[Goal] = []
    naive, cached, cascade = (
        found.get(("research", route)) for route in ("direct", "gateway", "cascade")
    )
    if naive and cascade:
        share = cascade.cost_per_day / naive.cost_per_day
        detail = f"{share:.1%} (${cascade.cost_per_day:,.2f} vs ${naive.cost_per_day:,.2f} a day"
        if cached:
            detail += (
                f"; caching alone ${cached.cost_per_day:,.2f} ="
                f" {cached.cost_per_day / naive.cost_per_day:.1%}, so the cascade takes"
                f" {1 - cascade.cost_per_day / cached.cost_per_day:.1%} off the cached cost"
            )
        out.append(
            Goal(
                f"research cascade: cost <= {TARGET_CASCADE_SHARE:.0%} of naive",
                share <= TARGET_CASCADE_SHARE,
                detail + ")",
            )
        )
    for route in ("gateway", "tuned"):
        direct, other = found.get(("support", "direct")), found.get(("support", route))
        if direct and other:
            ratio = other.usage.hit_ratio
            out.append(
                Goal(
                    f"support {route}: cache hit ratio >= {TARGET_HIT_RATIO:.0%}",
                    ratio >= TARGET_HIT_RATIO,
                    f"{ratio:.1%}",
                )
            )
            share = other.cost_per_day / direct.cost_per_day
            out.append(
                Goal(
                    f"support {route}: cost <= {TARGET_COST_SHARE:.0%} of naive",
                    share <= TARGET_COST_SHARE,
                    f"{share:.1%} (${other.cost_per_day:,.2f} vs ${direct.cost_per_day:,.2f}"
                    f" a day; prompt side alone ${other.prompt_cost_per_day:,.2f} vs"
                    f" ${direct.prompt_cost_per_day:,.2f} ="
                    f" {other.prompt_cost_per_day / direct.prompt_cost_per_day:.1%})",
                )
            )
        fan = found.get(("fanout", route))
        if fan:
            writes, reads = fan.prefix_writes()
            worst = max(writes.values(), default=0)
            over = sum(n > 1 for n in writes.values())
            detail = (
                f"{over} of {len(writes)} prefixes written more than once (max {worst},"
                f" {sum(writes.values()) / max(len(writes), 1):.2f} writes per prefix);"
                f" {sum(reads.values())} of {sum(x.call.measured for x in fan.results)}"
                " sub-calls read it"
            )
            if not sum(reads.values()):
                detail += " — never cached at all, so the write count proves nothing"
            out.append(
                Goal(
                    f"fanout {route}: at most one cache write per distinct prefix",
                    worst <= 1 and sum(reads.values()) > 0,
                    detail,
                )
            )
    return out


def rewrites(replays: list[Replay]) -> list[str]:
    lines = []
    for r in replays:
        if r.route not in ("gateway", "cascade"):
            continue
        counts = Counter(rule for result in r.results for rule in result.rewrites)
        summary = ", ".join(f"{rule} {n}" for rule, n in counts.most_common()) or "none"
        lines.append(f"- {r.workload} ({len(r.results)} calls): {summary}")
    return lines


def plot(replays: list[Replay], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (`.venv/bin/pip install matplotlib`)"
    names = list(dict.fromkeys(r.workload for r in replays))
    routes = [route for route, _, _ in ROUTES]
    found = {(r.workload, r.route): r for r in replays}
    fig, (cost_ax, hit_ax) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(routes)
    for k, route in enumerate(routes):
        xs = [i + (k - (len(routes) - 1) / 2) * width for i in range(len(names))]
        runs = [found.get((n, route)) for n in names]
        costs = [r.cost_per_day if r else 0 for r in runs]
        hits = [100 * r.usage.hit_ratio if r else 0 for r in runs]
        label = LABELS[route]
        cost_ax.bar(xs, costs, width, label=label)
        hit_ax.bar(xs, hits, width, label=label)
    for ax, title in ((cost_ax, "cost, $ per day"), (hit_ax, "cache hit ratio, %")):
        ax.set_xticks(range(len(names)), names)
        ax.set_title(title)
    hit_ax.set_ylim(0, 100)
    hit_ax.axhline(100 * TARGET_HIT_RATIO, color="grey", linestyle=":", linewidth=1)
    hit_ax.text(-0.4, 100 * TARGET_HIT_RATIO + 1, "support target", fontsize=8, color="grey")
    cost_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return f"plot: {path.relative_to(REPO)}"


def commit() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return run.stdout.strip()

    dirty = " (uncommitted changes)" if git("status", "--porcelain", "gateway") else ""
    return git("rev-parse", "--short", "HEAD") + dirty
