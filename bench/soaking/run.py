"""The run: workers sending the mix; RSS and open upstream responses sampled; metrics scraped."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from harness.ports import HOST
from harness.process import foreign_cpu_seconds, rss_mb
from harness.progress import log
from harness.proxies import Server

from soaking.config import FAULT_SEED, SAMPLE_EVERY_S, SETTLE_S
from soaking.load import Client, plans


@dataclass
class Sample:
    seconds: float
    done: int
    rss_mb: float
    open_upstream: int
    in_flight: int


def bare(key: str) -> str:
    """An outcome without its API: "chat: complete json" -> "complete json"."""
    return key.split(": ", 1)[1]


@dataclass
class Run:
    requests: int
    concurrency: int
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    outran: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    settled_open: int = -1
    settle_s: float = 0.0
    emulator_state: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    foreign_cores: float = 0.0
    rss_start_mb: float = 0.0

    @property
    def violations(self) -> int:
        return sum(n for key, n in self.outcomes.items() if bare(key).startswith("VIOLATION"))


async def soak(gateway: Server, emulator: Server, requests: int, concurrency: int) -> Run:
    run = Run(requests, concurrency)
    connector = aiohttp.TCPConnector(limit=0)  # the workers are the limit
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = Client(session, f"http://{HOST}:{gateway.port}")
        state_url = f"http://{HOST}:{emulator.port}/emulator/state"
        todo = plans(requests, FAULT_SEED)
        done = 0
        began = time.monotonic()
        run.rss_start_mb = rss_mb(gateway.proc.pid)

        async def worker() -> None:
            nonlocal done
            for plan in todo:  # one shared iterator: each plan goes to one worker
                result = await client.call(plan)
                run.outcomes[f"{plan.api}: {result.outcome}"] += 1
                if result.meant:
                    run.outran[result.meant] += 1
                if result.violation:
                    examples = run.examples.setdefault(f"{plan.api}: {result.outcome}", [])
                    if len(examples) < 5:
                        examples.append(result.example)
                done += 1

        async def sample() -> None:
            async with session.get(state_url) as response:
                state = await response.json()
            run.samples.append(
                Sample(
                    time.monotonic() - began,
                    done,
                    rss_mb(gateway.proc.pid),
                    state["open_streams"],
                    client.in_flight,
                )
            )

        async def sampler() -> None:
            while True:
                await asyncio.sleep(SAMPLE_EVERY_S)
                await sample()
                last = run.samples[-1]
                log(
                    f"  {last.seconds:5.0f} s  {last.done:>7,} done  RSS {last.rss_mb:.1f} MB  "
                    f"open upstream {last.open_upstream}  in flight {last.in_flight}"
                )

        foreign = foreign_cpu_seconds()
        watcher = asyncio.create_task(sampler())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.monotonic() - began
        run.foreign_cores = (foreign_cpu_seconds() - foreign) / run.seconds
        watcher.cancel()
        await sample()  # the last request just ended
        settle_began = time.monotonic()
        while True:
            async with session.get(state_url) as response:
                run.emulator_state = await response.json()
            run.settle_s = time.monotonic() - settle_began
            if not run.emulator_state["open_streams"] or run.settle_s > SETTLE_S:
                break
            await asyncio.sleep(0.1)
        run.settled_open = run.emulator_state["open_streams"]
        await sample()
        async with session.get(f"http://{HOST}:{gateway.port}/metrics") as response:
            run.metrics = scrape(await response.text())
    return run


def scrape(text: str) -> dict[str, dict[str, float]]:
    """Per metric, its samples summed by their `status` (or `provider`) label."""
    wanted = ("gateway_requests_total", "gateway_upstream_errors_total", "gateway_retries_total")
    out: dict[str, dict[str, float]] = {name: {} for name in wanted}
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in out:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = labels.get("status", "all")
            out[name][key] = out[name].get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out
