"""What caching saves: naive agent workloads replayed direct vs through the gateway.

Run from the repository root (one run produces the whole table):

    taskset -c 0 .venv/bin/python bench/cost.py               # a full day, a few minutes
    taskset -c 0 .venv/bin/python bench/cost.py --scale 0.1   # the first 2.4 h, x10

Each workload in bench/workloads/ builds a day of calls written the naive way (timestamps and
names in the system prompt, unstable tool JSON, no cache_control, unpinned aliases). They are
replayed with the official `anthropic` SDK against `gateway emulate --latency simulated
--virtual-clock` (each call says what time it is in `x-emulator-now`; the response carries
the modelled time to first token in `x-emulator-ttft-ms`), once direct and once through
`gateway serve`. A third replay sends the workload's hand-tuned variant direct: the bar a
gateway in front of the naive app should reach. Every replay uses its own API key, so no
two share a cache. Calls of one replay go in virtual-time order (a conversation's next turn
after its previous one, as a real agent awaits the answer); calls at the same instant
(fan-out) go in parallel. Prices: the gateway's own (`gateway.metering.pricing`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Literal

import anthropic
import httpx
import openai
from harness import free_port, gateway_process
from harness.servers import relay_settings
from harness.stats import percentile
from workloads import Call, Variant, fanout, research, support, support_openai

from gateway.catalog import ModelCatalog
from gateway.metering.pricing import Pricing
from gateway.wire.usage import Usage as TokenUsage

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
WORKLOADS: dict[str, ModuleType] = {m.NAME: m for m in (support, research, fanout, support_openai)}
DAY = "2026-11-25"  # claude-sonnet-4-5-20250929 retires 2026-11-30: replay a day before it
REPLY_WORDS = 150  # the emulator's answer length: ~200 output tokens a call
Upstream = Literal["emulator", "gateway", "cascade"]
ROUTES: tuple[tuple[str, Variant, Upstream], ...] = (
    # (route, workload variant, where its calls go)
    ("direct", "naive", "emulator"),
    ("gateway", "naive", "gateway"),  # caching only: no step is routed
    ("cascade", "naive", "cascade"),  # caching and the cascade (CASCADE_STEPS)
    ("tuned", "tuned", "emulator"),
)
LABELS = {
    "direct": "naive, direct",
    "gateway": "naive, via gateway",
    "cascade": "naive, via gateway with the cascade",
    "tuned": "hand-tuned, direct",
}
# The cascade as the README recommends it: the research agent's route and tool-decision
# steps (each ends in a tool call) on the small tier, its synthesis on the large tier.
CASCADE_STEPS = {
    "routing": {"tier": "small"},
    "search": {"tier": "small"},
    "fetch": {"tier": "small"},
    "synthesis": {"tier": "large"},
}
# Workloads labelled with those steps; the others would replay the gateway route again.
CASCADE_WORKLOADS = ("research",)
# The gateway's own account of the cache, read from its /metrics after the replay.
GATEWAY_METRICS = (
    "gateway_cache_miss_cause_total",
    "gateway_cache_wasted_write_tokens_total",
    "gateway_coalesced_total",
)
TARGET_HIT_RATIO = 0.85
TARGET_COST_SHARE = 0.50
TARGET_CASCADE_SHARE = 0.25  # research agent: caching and cascade together (issue 5)
SHARED_PREFIX_READ = 0.9  # a call "read the shared prefix" when it read >= 90% of its estimate


# --------------------------------------------------------------------------- measurements

PRICING = Pricing.load()  # the gateway's own price source: genai-prices and its overrides
CATALOG = ModelCatalog.load()


def _provider(model: str) -> str:
    spec = CATALOG.resolve(model)
    return spec.provider if spec is not None else "anthropic"


@dataclass(frozen=True, slots=True)
class Usage(TokenUsage):
    """The gateway's token counts, summed over calls and priced."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
        )

    @property
    def prompt(self) -> int:
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    @property
    def hit_ratio(self) -> float:
        return self.cache_read / self.prompt if self.prompt else 0.0

    def cost(self, model: str) -> float:
        priced = PRICING.cost(_provider(model), model, self)
        if priced is None:
            raise LookupError(f"no price for {model}")
        return priced


@dataclass(frozen=True, slots=True)
class Result:
    call: Call
    usage: Usage
    ttft_ms: float
    rewrites: tuple[str, ...]
    model: str  # the model that served the call (the cascade may have chosen another)

    @property
    def cost(self) -> float:
        return self.usage.cost(self.model)

    @property
    def prompt_cost(self) -> float:
        """The cost of the prompt alone: the part caching can change."""
        return replace(self.usage, output=0).cost(self.model)


@dataclass
class Replay:
    """One workload on one route: every call's result."""

    workload: str
    route: str
    scale: float
    results: list[Result] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return sum((r.usage for r in self.results), Usage())

    @property
    def cost_per_day(self) -> float:
        return sum(r.cost for r in self.results) / self.scale

    @property
    def prompt_cost_per_day(self) -> float:
        return sum(r.prompt_cost for r in self.results) / self.scale

    def ttft(self, q: float) -> float:
        return percentile([r.ttft_ms for r in self.results if r.call.measured], q)

    def prefix_writes(self) -> tuple[Counter[str], Counter[str]]:
        """Per shared prefix (fan-out): how many calls wrote it, and how many read it."""
        writes: Counter[str] = Counter()
        reads: Counter[str] = Counter()
        for r in self.results:
            if r.call.prefix is None or not r.call.prefix_tokens:
                continue
            need = SHARED_PREFIX_READ * r.call.prefix_tokens
            written = r.usage.cache_write_5m + r.usage.cache_write_1h
            writes[r.call.prefix] += r.usage.cache_read < need <= r.usage.cache_read + written
            reads[r.call.prefix] += r.usage.cache_read >= need
        return writes, reads


# --------------------------------------------------------------------------- servers


def server(
    args: Sequence[str], port: int, env: dict[str, str], ready: str
) -> AbstractContextManager[str]:
    """`python -m gateway ARGS --port PORT` until the block ends (bench/harness/servers.py)."""
    command = (*args, "--port", str(port))
    return gateway_process(*command, port=port, env=env, ready_path=ready, timeout_s=30)


# --------------------------------------------------------------------------- replay


def request_headers(call: Call, day_start: float, route: str) -> dict[str, str]:
    headers = {"x-emulator-now": f"{day_start + call.at:.3f}", **call.headers}
    if route == "gateway":
        headers["x-gateway-route"] = "off"  # caching alone: the client's models are kept
    if call.step:
        headers["x-gateway-step"] = call.step
    return headers


def result(call: Call, usage: Usage, headers: httpx.Headers, model: str) -> Result:
    rewrites = headers.get("x-gateway-rewrites", "")
    return Result(
        call,
        usage,
        float(headers.get("x-emulator-ttft-ms", "nan")),
        tuple(r.strip() for r in rewrites.split(",") if r.strip()),
        model,
    )


async def send(
    client: anthropic.AsyncAnthropic,
    call: Call,
    day_start: float,
    gate: asyncio.Semaphore,
    route: str,
) -> Result:
    headers = request_headers(call, day_start, route)
    async with gate:
        raw = await client.messages.with_raw_response.create(**call.params, extra_headers=headers)
    message = await raw.parse()
    u = message.usage
    written_5m = u.cache_creation_input_tokens or 0
    written_1h = 0
    if u.cache_creation is not None:
        written_5m = u.cache_creation.ephemeral_5m_input_tokens
        written_1h = u.cache_creation.ephemeral_1h_input_tokens
    usage = Usage(
        u.input_tokens, u.output_tokens, u.cache_read_input_tokens or 0, written_5m, written_1h
    )
    return result(call, usage, raw.headers, message.model)


async def send_openai(
    client: openai.AsyncOpenAI,
    call: Call,
    day_start: float,
    gate: asyncio.Semaphore,
    route: str,
) -> Result:
    """`send` for workloads on OpenAI's chat completions (PROVIDER = "openai")."""
    headers = request_headers(call, day_start, route)
    async with gate:
        raw = await client.chat.completions.with_raw_response.create(
            **call.params, extra_headers=headers
        )
    completion = raw.parse()
    u = completion.usage
    assert u is not None
    details = u.prompt_tokens_details
    cached = (details.cached_tokens if details else 0) or 0
    written = (details.cache_write_tokens if details else 0) or 0
    usage = Usage(u.prompt_tokens - cached - written, u.completion_tokens, cached, written, 0)
    return result(call, usage, raw.headers, completion.model)


async def replay(
    run: Replay, calls: list[Call], base_url: str, day_start: float, gate: asyncio.Semaphore
) -> Replay:
    key = f"sk-bench-{run.workload}-{run.route}-{os.getpid()}"  # one workspace per replay
    if getattr(WORKLOADS[run.workload], "PROVIDER", "anthropic") == "openai":
        async with openai.AsyncOpenAI(
            base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=60
        ) as chat:
            for c in sorted(calls, key=lambda c: c.at):  # one conversation turn at a time
                run.results.append(await send_openai(chat, c, day_start, gate, run.route))
        print(f"  {run.workload:<9} {run.route:<8} {len(calls):>5} calls", file=sys.stderr)
        return run
    async with anthropic.AsyncAnthropic(
        base_url=base_url, api_key=key, max_retries=0, timeout=60
    ) as client:
        i = 0
        ordered = sorted(calls, key=lambda c: c.at)
        while i < len(ordered):
            j = i + 1
            head = ordered[i]
            while head.group and j < len(ordered) and ordered[j].group == head.group:
                j += 1  # a parallel group: the same instant, sent together
            batch = ordered[i:j]
            sent = (send(client, c, day_start, gate, run.route) for c in batch)
            run.results += await asyncio.gather(*sent)
            i = j
    print(f"  {run.workload:<9} {run.route:<8} {len(calls):>5} calls", file=sys.stderr)
    return run


async def run_all(
    names: Sequence[str],
    scale: float,
    seed: int,
    day_start: float,
    concurrency: int,
    coalesce_steps: Sequence[str],
    realtime: Sequence[str] = (),
    realtime_scale: float = 0.1,
) -> tuple[list[Replay], list[str]]:
    """Every workload on every route, and the gateways' own cache metrics afterwards.

    Workloads named in `realtime` run against an emulator with realistic latency on the
    wall clock instead of the virtual one: cold-prefix coalescing holds followers until
    the leader's response has begun in real time, which a virtual clock cannot show.
    """
    virtual = [n for n in names if n not in realtime]
    groups = [
        (virtual, scale, ("emulate", "--latency", "simulated", "--virtual-clock")),
        (
            [n for n in names if n in realtime],
            realtime_scale,
            ("emulate", "--latency", "realistic"),
        ),
    ]
    replays: list[Replay] = []
    metrics: list[str] = []
    for group, group_scale, emulate in groups:
        if group:
            done, exported = await _run_group(
                group, group_scale, seed, day_start, concurrency, coalesce_steps, emulate
            )
            replays += done
            metrics += exported
    return replays, metrics


async def _run_group(
    names: Sequence[str],
    scale: float,
    seed: int,
    day_start: float,
    concurrency: int,
    coalesce_steps: Sequence[str],
    emulate: tuple[str, ...],
) -> tuple[list[Replay], list[str]]:
    emulator_port, gateway_port, cascade_port = free_port(), free_port(), free_port()
    emulator_env = {"GATEWAY_EMULATOR__REPLY_WORDS": str(REPLY_WORDS)}
    gateway_env = {
        **relay_settings(f"http://127.0.0.1:{emulator_port}"),
        "GATEWAY_PROVIDERS__ANTHROPIC__EMULATOR": "true",  # x-emulator-now reaches it
        "GATEWAY_PROVIDERS__OPENAI__EMULATOR": "true",
        "GATEWAY_REWRITE__COALESCE_STEPS": json.dumps(list(coalesce_steps)),
    }
    cascade_env = {**gateway_env, "GATEWAY_ROUTING__STEPS": json.dumps(CASCADE_STEPS)}
    with (
        server(emulate, emulator_port, emulator_env, "/emulator/state") as emulator_url,
        server(("serve",), gateway_port, gateway_env, "/healthz") as gateway_url,
        server(("serve",), cascade_port, cascade_env, "/healthz") as cascade_url,
    ):
        urls = {"emulator": emulator_url, "gateway": gateway_url, "cascade": cascade_url}
        gate = asyncio.Semaphore(concurrency)
        jobs = []
        for name in names:
            module = WORKLOADS[name]
            for route, variant, target in ROUTES:
                if target == "cascade" and name not in CASCADE_WORKLOADS:
                    continue
                calls: list[Call] = module.calls(variant, seed, scale, day_start)
                jobs.append(
                    replay(Replay(name, route, scale), calls, urls[target], day_start, gate)
                )
        replays = list(await asyncio.gather(*jobs))
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = (await http.get(gateway_url + "/metrics")).text.splitlines()
    return replays, [m for m in metrics if m.startswith(GATEWAY_METRICS)]


# --------------------------------------------------------------------------- report


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="replay this fraction of the day, extrapolate"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight at most")
    parser.add_argument("--day", default=DAY, help="the virtual day replayed (UTC)")
    parser.add_argument(
        "--coalesce-steps",
        default="extraction",
        help="the gateway's rewrite.coalesce_steps (comma-separated; the fan-out's step)",
    )
    parser.add_argument(
        "--realtime",
        default="fanout",
        help="workloads replayed on the wall clock at realistic latency (coalescing needs it)",
    )
    parser.add_argument(
        "--realtime-scale", type=float, default=0.1, help="--scale for the --realtime workloads"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    if not 0 < args.scale <= 1 or any(n not in WORKLOADS for n in names):
        parser.error(f"--scale in (0, 1]; --workloads from {', '.join(WORKLOADS)}")
    day_start = dt.datetime.fromisoformat(args.day).replace(tzinfo=dt.UTC).timestamp()
    # The SDK warns about claude-sonnet-4-5's end of life: the naive app uses it on purpose.
    warnings.filterwarnings("ignore", "The model .claude-sonnet-4-5", DeprecationWarning)

    started = time.monotonic()
    print(f"replaying {args.day} at scale {args.scale} ...", file=sys.stderr)
    steps = [s.strip() for s in args.coalesce_steps.split(",") if s.strip()]
    realtime = [n.strip() for n in args.realtime.split(",") if n.strip()]
    replays, metrics = asyncio.run(
        run_all(
            names,
            args.scale,
            args.seed,
            day_start,
            args.concurrency,
            steps,
            realtime,
            args.realtime_scale,
        )
    )
    order = {route: k for k, (route, _, _) in enumerate(ROUTES)}
    replays.sort(key=lambda r: (names.index(r.workload), order[r.route]))
    elapsed = time.monotonic() - started

    calls = sum(len(r.results) for r in replays)
    report = [
        "# Cost benchmark",
        "",
        f"Virtual day {args.day}, scale {args.scale} (first {args.scale * 24:.1f} h of the day"
        f" at full density, costs and tokens extrapolated ×{1 / args.scale:g}), seed"
        f" {args.seed}, gateway at {commit()}, {calls:,} calls in {elapsed:.0f} s."
        f" Replayed on the wall clock at realistic latency instead (scale"
        f" {args.realtime_scale}): {', '.join(realtime) or 'none'}.",
        "Routes: `direct` = the naive app straight to the emulator; `gateway` = the same naive"
        " app through `gateway serve`; `tuned` = the hand-tuned app straight to the emulator"
        " (the reference). Tokens per day; TTFT is the emulator's modelled time to first"
        " token; savings vs the naive direct cost. Hit ratio = cache_read / (input +"
        " cache_read + cache_write).",
        "",
        *table(replays),
        "",
        "## Targets (issues 4 and 5)",
        "",
        "```",
        *(t.line() for t in targets(replays)),
        "```",
        "",
        "## What the gateway rewrote (x-gateway-rewrites, calls carrying each rule)",
        "",
        *rewrites(replays),
        "",
        f"## The gateway's cache metrics after the replay (not extrapolated; coalesce_steps ="
        f" {steps})",
        "",
        "```",
        *(metrics or ["(none exported)"]),
        "```",
        "",
        "## Per position: mean tokens per call",
        "",
        *breakdown(replays),
        "",
    ]
    text = "\n".join(report)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "cost.md").write_text(text)
        print(plot(replays, RESULTS / "cost.png"), file=sys.stderr)


if __name__ == "__main__":
    main()
