"""Replaying a workload's calls with the official SDKs, direct or through `gateway serve`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, AsyncExitStack

import anthropic
import httpx
import openai
from harness import free_port, gateway_process
from harness.servers import relay_settings
from workloads import Call

from costing.config import (
    CASCADE_STEPS,
    CASCADE_WORKLOADS,
    GATEWAY_METRICS,
    REPLY_WORDS,
    ROUTES,
    WORKLOADS,
)
from costing.measure import Replay, Result, Usage


def server(
    args: Sequence[str], port: int, env: dict[str, str], ready: str
) -> AbstractContextManager[str]:
    """`python -m gateway ARGS --port PORT` until the block ends (bench/harness/servers.py)."""
    command = (*args, "--port", str(port))
    return gateway_process(*command, port=port, env=env, ready_path=ready, timeout_s=30)


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
    async with AsyncExitStack() as clients:
        one: Callable[[Call], Awaitable[Result]]
        if getattr(WORKLOADS[run.workload], "PROVIDER", "anthropic") == "openai":
            chat = await clients.enter_async_context(
                openai.AsyncOpenAI(
                    base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=60
                )
            )

            def one(c: Call) -> Awaitable[Result]:
                return send_openai(chat, c, day_start, gate, run.route)
        else:
            client = await clients.enter_async_context(
                anthropic.AsyncAnthropic(base_url=base_url, api_key=key, max_retries=0, timeout=60)
            )

            def one(c: Call) -> Awaitable[Result]:
                return send(client, c, day_start, gate, run.route)

        for batch in _batches(sorted(calls, key=lambda c: c.at)):
            run.results += await asyncio.gather(*(one(c) for c in batch))
    print(f"  {run.workload:<9} {run.route:<8} {len(calls):>5} calls", file=sys.stderr)
    return run


def _batches(ordered: list[Call]) -> Iterator[list[Call]]:
    """One conversation turn at a time; a parallel group (the same instant) together."""
    i = 0
    while i < len(ordered):
        j = i + 1
        head = ordered[i]
        while head.group and j < len(ordered) and ordered[j].group == head.group:
            j += 1
        yield ordered[i:j]
        i = j


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
