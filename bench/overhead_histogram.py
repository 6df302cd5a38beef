"""The gateway's own time per call (`gateway_overhead_seconds`) on the recorded agent bodies.

Run from the repository root (the load client shares core 0 with the emulator):

    taskset -c 0 .venv/bin/python bench/overhead_histogram.py              # 300 calls a cell
    taskset -c 0 .venv/bin/python bench/overhead_histogram.py --calls 50 --concurrency 1

For each recorded body (the Claude Code and Codex sessions' first and largest turns,
bench/staging/bodies.py) a fresh `gateway serve` (defaults: every rewrite rule, metering, the
call log; one worker pinned to core 1) relays to the emulator (core 0). The session's earlier
calls are replayed first, then each cell (JSON or stream, at each concurrency) sends its calls
and reads the histogram's buckets from /metrics before and after: p50 and p99 are the upper
bounds of the buckets they fall in, all a histogram can say. Beside them, from /proc: the
gateway process's CPU per call (every thread, all its work on a call, not only the part the
histogram times) and how many times the kernel preempted its event loop during the cell. The
histogram is wall time, so on a shared machine a p99 well above the CPU per call with
preemptions counted is the other processes' time on the gateway's core, not the gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.machine import machine  # noqa: E402
from harness.proxies import Server, emulator_server, gateway_server  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from staging.bodies import Body, all_bodies  # noqa: E402

METRIC = "gateway_overhead_seconds"
Buckets = dict[float, float]  # upper bound (s) -> cumulative count, summed over labels


def buckets(gateway: Server) -> Buckets:
    text = httpx.get(gateway.base_url + "/metrics").text
    out: Buckets = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == METRIC + "_bucket":
                bound = float(sample.labels["le"])
                out[bound] = out.get(bound, 0.0) + sample.value
    return out


def process_state(gateway: Server) -> tuple[float, int]:
    """The gateway process's CPU seconds (user + system, every thread) and its event loop's
    thread's involuntary context switches: times the kernel took the core from it."""
    pid = gateway.proc.pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    switches = next(line for line in status.splitlines() if line.startswith("nonvoluntary"))
    return cpu_s, int(switches.split()[1])


def quantile_bound(before: Buckets, after: Buckets, q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of the calls between two reads."""
    delta = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = delta[-1][1]  # le="+Inf"
    return next(bound for bound, count in delta if count >= q * total)


def headers(body: Body) -> dict[str, str]:
    if body.wire.provider == "openai":
        return {"content-type": "application/json", "authorization": "Bearer k"}
    return {"content-type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"}


async def send(gateway: Server, body: Body, raws: list[bytes], concurrency: int) -> None:
    """Every raw body in `raws`, `concurrency` at a time, each read whole and checked for 200."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway.base_url, limits=limits, timeout=120) as client:
        left = iter(raws)

        async def worker() -> None:
            for raw in left:
                response = await client.post(body.path, content=raw, headers=headers(body))
                assert response.status_code == 200, response.text[:500]

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def measure(body: Body, upstream: Server, calls: int, levels: list[int]) -> list[str]:
    env = {"GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream.base_url}
    rows = []
    with gateway_server(upstream, env=env) as gateway:
        asyncio.run(send(gateway, body, list(body.earlier), 1))  # the session so far
        for mode, stream in (("json", False), ("stream", True)):
            raw = orjson.dumps({**orjson.loads(body.raw), "stream": stream})
            asyncio.run(send(gateway, body, [raw] * 10, 1))  # warm
            for concurrency in levels:
                before, (cpu_s, switches) = buckets(gateway), process_state(gateway)
                asyncio.run(send(gateway, body, [raw] * calls, concurrency))
                after, (cpu_after_s, switches_after) = buckets(gateway), process_state(gateway)
                p50, p99 = (quantile_bound(before, after, q) * 1000 for q in (0.5, 0.99))
                cells = [f"{body.name} ({len(body.raw) / 1000:.0f} KB)", mode, str(concurrency)]
                cells += [str(calls), f"≤ {p50:g} ms", f"≤ {p99:g} ms"]
                cells += [f"{(cpu_after_s - cpu_s) * 1000 / calls:.2f} ms"]
                cells += [str(switches_after - switches)]
                rows.append("| " + " | ".join(cells) + " |")
                print(rows[-1], file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300, help="calls per cell")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated levels")
    parser.add_argument("--body", default="", help="one body's name (default: every recorded)")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")]
    recorded = [b for b in all_bodies() if b.name.startswith(("claude-code-", "codex-"))]
    chosen = [b for b in recorded if not args.body or b.name == args.body]
    header = ["| body | mode | concurrency | calls | p50 | p99 | CPU per call | preempted |"]
    header += ["|---|---|---|---:|---:|---:|---:|---:|"]
    rows: list[str] = []
    with emulator_server() as upstream:
        for body in chosen:
            rows += measure(body, upstream, args.calls, levels)
    about = machine(["uvicorn", "httpx", "aiohttp", "orjson"])
    print("\n".join(f"- {key}: {value}" for key, value in about.items()))
    print("\n" + "\n".join(header + rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
