"""The fault soak: N requests through the gateway to an emulator that injects 5% faults, with
clients that leave mid-stream and before the first byte (issue 9).

Run from the repository root:

    .venv/bin/python bench/soak.py                    # 100,000 requests, about 5 minutes
    .venv/bin/python bench/soak.py --quick            # 5,000 requests
    .venv/bin/python bench/soak.py --requests 20000 --concurrency 64

`gateway emulate` (latency `realistic` with a fast profile, faults at seeded rates) and
`gateway serve` (one worker) run as subprocesses on free ports: the gateway alone on core 1,
the emulator and this load generator on core 0 (`taskset`), as bench/overhead.py does. An
aiohttp client sends a seeded mix of JSON and stream calls to POST /v1/messages and
classifies every outcome. The run passes when every request ended with a complete response,
a well-formed error or a departure its client chose; the emulator has no response open once
the clients are done; the gateway's RSS after warm-up stays within RSS_TOLERANCE_MB; and no
500 came from the gateway itself. The report goes to stdout and bench/results/soak.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from harness.machine import machine
from harness.ports import HOST, free_port
from harness.process import foreign_cpu_seconds, pinned, rss_mb
from harness.proxies import GATEWAY_CORE, LOAD_CORE, REPO, Server, serving
from measure.runner import log

RESULTS = REPO / "bench" / "results"
PACKAGES = ("uvicorn", "httpx", "httpx-aiohttp", "aiohttp")  # named in the report's header

# The injected faults: 5% of upstream attempts (retries and hedges draw again), seeded.
FAULT_RATES = {"429": 0.01, "529": 0.01, "500": 0.01, "cut": 0.01, "slow": 0.01}
FAULT_SEED = 9
SLOW_FAULT_MS = 1500  # past the provider timeout below: a slow first byte is a timeout + retry
PROVIDER_TIMEOUT_S = 1.0
# Backoff between retries of 5xx/529/timeouts (defaults 0.5 s doubling to 8 s): shortened so
# a run stays bounded. A 429's retry-after (the emulator's 1 s) is honoured as sent.
BASE_DELAY_S, MAX_DELAY_S = 0.05, 0.4
HEDGE_TTFT_MS = 300

# The client's mix, per request (seeded).
STREAM_SHARE = 0.5
LEAVE_EARLY_SHARE = 0.04  # give up if no response head within LEAVE_EARLY_MS
LEAVE_EARLY_MS = (2.0, 60.0)
LEAVE_MID_SHARE = 0.08  # of streams: close after the first content chunk
STEPS = (None, "routing", "synthesis", "tool_decision")  # tool_decision is hedged
FAMILIES = 256  # distinct system prompts: the gateway's bounded caches fill during warm-up
HANG_S = 30.0  # a request not finished by then is a hang

WARMUP_SHARE = 0.1  # RSS "after warm-up" is read once this share of requests is done,
WARMUP_MIN = 10_000  # and at least this many: the bounded caches fill over thousands of calls
RSS_TOLERANCE_MB = 5.0
SAMPLE_EVERY_S = 2.0
SETTLE_S = 10.0  # after the last request, how long the emulator gets to close everything

# A fast profile for the models the soak calls: TTFT 15 ms, 1,500 tokens/s. Streams are still
# in flight upstream when a client leaves, without the run taking hours.
FAST = {
    "ttft_base_ms": 15,
    "prefill_ms_per_1k": 0,
    "cached_prefill_ms_per_1k": 0,
    "output_tokens_per_s": 1500,
}
MODELS = (
    "claude-haiku-4-5-20251001", "claude-haiku-5-5", "claude-sonnet-5-5",
    "gpt-5.4-mini-2026-03-17", "gpt-5.6-luna", "gpt-5.6-terra",
)  # fmt: skip
OPENAI_SHARE = 0.25  # of calls: OpenAI Chat Completions, the rest Anthropic Messages
PATHS = {"messages": "/v1/messages", "chat": "/v1/chat/completions"}


# --------------------------------------------------------------------------- processes


def soak_config(emulator_port: int) -> str:
    """One config for both processes (JSON is YAML)."""
    return orjson.dumps(
        {
            "server": {"start_emulator": False, "workers": 1, "upstream_transport": "aiohttp"},
            "providers": {
                provider: {
                    "base_url": f"http://{HOST}:{emulator_port}",
                    "timeout_s": PROVIDER_TIMEOUT_S,
                }
                for provider in ("anthropic", "openai")
            },
            "emulator": {
                "latency": "realistic",
                "fault_rates": FAULT_RATES,
                "fault_seed": FAULT_SEED,
                "slow_fault_ms": SLOW_FAULT_MS,
            },
            "models": [{"id": model, "latency": FAST} for model in MODELS],
            "routing": {
                "refresh_lifecycle": False,
                # Its slow first byte is a read timeout, retried as before these were not.
                "retries": {
                    "base_delay_s": BASE_DELAY_S,
                    "max_delay_s": MAX_DELAY_S,
                    "retry_read_timeouts": True,
                },
                "steps": {
                    "routing": {"tier": "small"},
                    "synthesis": {"tier": "large", "fallbacks": ["tier:small"]},
                    "tool_decision": {
                        "tier": "small",
                        "ttft_ms": HEDGE_TTFT_MS,
                        "hedge": True,
                        "fallbacks": ["claude-haiku-4-5", "gpt-5.4-mini"],  # one per provider
                    },
                },
            },
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


@contextmanager
def started(workdir: Path) -> Iterator[tuple[Server, Server]]:
    """The emulator and the gateway from one generated config, pinned, until the block ends."""
    emulator_port, gateway_port = free_port(), free_port()
    config = workdir / "soak.yaml"
    config.write_text(soak_config(emulator_port))
    gateway = [sys.executable, "-m", "gateway"]
    with (
        serving(
            "emulator",
            pinned(LOAD_CORE, [*gateway, "emulate", "--config", str(config)]),
            emulator_port,
            {"GATEWAY_EMULATOR__PORT": str(emulator_port)},
        ) as emulator,
        serving(
            "gateway",
            pinned(GATEWAY_CORE, [*gateway, "serve", "--config", str(config)]),
            gateway_port,
            {"GATEWAY_SERVER__PORT": str(gateway_port)},
        ) as served,
    ):
        yield emulator, served


# --------------------------------------------------------------------------- the mix


@dataclass(frozen=True, slots=True)
class Plan:
    api: str  # a key of PATHS
    stream: bool
    step: str | None
    family: int
    leave: str | None  # None, "early" (before the response head) or "mid" (mid-stream)
    leave_after_s: float = 0.0


def plans(count: int, seed: int) -> Iterator[Plan]:
    rng = random.Random(seed)
    for _ in range(count):
        api = "chat" if rng.random() < OPENAI_SHARE else "messages"
        stream = rng.random() < STREAM_SHARE
        step = rng.choice(STEPS)
        family = rng.randrange(FAMILIES)
        draw = rng.random()
        if draw < LEAVE_EARLY_SHARE:
            after = rng.uniform(*LEAVE_EARLY_MS) / 1000
            yield Plan(api, stream, step, family, "early", after)
        elif stream and draw < LEAVE_EARLY_SHARE + LEAVE_MID_SHARE:
            yield Plan(api, stream, step, family, "mid")
        else:
            yield Plan(api, stream, step, family, None)


def bodies() -> dict[tuple[str, int, bool], bytes]:
    out = {}
    for family in range(FAMILIES):
        system = (
            f"You are support agent {family} for a hardware store. Answer in two sentences, "
            "name the aisle, and never promise delivery dates. " * 3
        )
        question = {"role": "user", "content": f"Where are the size {family} bolts?"}
        messages = {
            "model": "claude-haiku-4-5",
            "max_tokens": 200,
            "system": system,
            "messages": [question],
        }
        chat = {  # no stream_options: the gateway asks for usage and filters it out again
            "model": "gpt-5.4-mini",
            "max_completion_tokens": 200,
            "messages": [{"role": "system", "content": system}, question],
        }
        for api, body in (("messages", messages), ("chat", chat)):
            out[api, family, False] = orjson.dumps(body)
            out[api, family, True] = orjson.dumps({**body, "stream": True})
    return out


# --------------------------------------------------------------------------- outcomes

COMPLETE = ("complete json", "complete stream")
LEFT = ("left before the response head", "left mid-stream")
EVENT_RE = re.compile(rb"\r\n|\r|\n")
STREAM_ENDS = (b"message_stop", b"event: error", b"[DONE]", b'{"error"')


@dataclass
class Result:
    outcome: str  # one of COMPLETE, LEFT, "error json <status> <type> (<source>)",
    # "error event <type>", or "VIOLATION <what>"
    example: str = ""  # for a violation: what the client saw
    meant: str | None = None  # a planned departure that the response outran

    @property
    def violation(self) -> bool:
        return self.outcome.startswith("VIOLATION")


def sse_events(data: bytes) -> list[tuple[str, bytes]] | None:
    """(event name, data) of each complete event; None when the bytes end mid-event."""
    lines = EVENT_RE.split(data)
    events: list[tuple[str, bytes]] = []
    name, payload, pending = "message", b"", False
    for line in lines[:-1]:  # the last piece follows the last line break: it must be empty
        if not line:
            if pending:
                events.append((name, payload))
            name, payload, pending = "message", b"", False
        elif line.startswith(b"event:"):
            name, pending = line[6:].strip().decode(), True
        elif line.startswith(b"data:"):
            payload, pending = (payload + b"\n" if payload else b"") + line[5:].strip(), True
    if lines[-1] or pending:
        return None
    return events


def error_envelope(data: bytes, api: str) -> dict[str, Any] | None:
    """The error object of the API's envelope, or None if the body is not one: Anthropic's
    `{"type":"error","error":{"type","message"},"request_id"}`, OpenAI's
    `{"error":{"message","type","param","code"}}`."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if (
        isinstance(error, dict)
        and (api == "chat" or parsed.get("type") == "error")
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    ):
        return error
    return None


def classify_stream(data: bytes, api: str) -> Result:
    events = sse_events(data)
    if events is None:
        return Result("VIOLATION stream ends mid-event", data[-300:].decode(errors="replace"))
    if api == "chat":
        return classify_chat_stream([payload for _, payload in events])
    names = [name for name, _ in events]
    if names and names[-1] == "message_stop" and "error" not in names:
        if names[0] != "message_start":
            return Result("VIOLATION stream without message_start", ",".join(names))
        return Result("complete stream")
    if names and names[-1] == "error":
        error = error_envelope(events[-1][1], "messages")
        if error is None:
            return Result("VIOLATION malformed error event", events[-1][1][:300].decode())
        return Result(f"error event {error['type']}")
    return Result("VIOLATION stream ends without message_stop or error", ",".join(names[-5:]))


def classify_chat_stream(payloads: list[bytes]) -> Result:
    """Chat chunks end with `data: [DONE]`, or (a failure) with a chunk holding `error`."""
    if payloads and payloads[-1] == b"[DONE]":
        try:
            chunks = [orjson.loads(payload) for payload in payloads[:-1]]
        except orjson.JSONDecodeError:
            return Result("VIOLATION chat chunk that is not JSON", b",".join(payloads).decode())
        if any("error" in chunk for chunk in chunks):
            return Result("VIOLATION chat stream with an error before [DONE]", str(chunks)[:300])
        if not any(c.get("choices") and c["choices"][0].get("finish_reason") for c in chunks):
            return Result("VIOLATION chat stream without a finish_reason", str(chunks)[-300:])
        return Result("complete stream")
    error = error_envelope(payloads[-1], "chat") if payloads else None
    if error is None:
        tail = b" | ".join(payloads[-3:]).decode(errors="replace")
        return Result("VIOLATION chat stream ends without [DONE] or an error chunk", tail)
    return Result(f"error event {error['type']}")


def classify_json(status: int, headers: Any, data: bytes, api: str) -> Result:
    if status == 200:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            example = data[:300].decode("latin-1")
            return Result("VIOLATION 200 with a body that is not JSON", example)
        usage = message.get("usage") if isinstance(message, dict) else None
        kind, output = ("object", "chat.completion") if api == "chat" else ("type", "message")
        tokens = "completion_tokens" if api == "chat" else "output_tokens"
        if (
            isinstance(usage, dict)
            and message.get(kind) == output
            and isinstance(usage.get(tokens), int)
        ):
            return Result("complete json")
        return Result("VIOLATION 200 without a message and usage", data[:300].decode())
    error = error_envelope(data, api)
    if error is None:
        example = f"{status} {headers.get('content-type')}: {data[:300].decode('latin-1')}"
        return Result(f"VIOLATION {status} without an error envelope", example)
    # The gateway's own errors carry its request id where the API carries one: Anthropic's
    # in the body, OpenAI's in x-request-id. Relayed errors carry the provider's.
    own_id = headers.get("x-gateway-request-id")
    named = headers.get("x-request-id") if api == "chat" else orjson.loads(data).get("request_id")
    source = "gateway" if own_id and named == own_id else "upstream"
    if source == "gateway" and status >= 500 and status not in (502, 503, 504):
        return Result(f"VIOLATION the gateway's own {status}", data[:300].decode())
    retryable = status in (408, 409, 429) or status >= 500
    if source == "upstream" and retryable and headers.get("x-should-retry") != "false":
        example = f"{status}: {data[:300].decode()}"
        return Result("VIOLATION retried error relayed without x-should-retry: false", example)
    return Result(f"error json {status} {error['type']} ({source})")


class Client:
    def __init__(self, session: aiohttp.ClientSession, origin: str) -> None:
        self.session = session
        self.urls = {api: origin + path for api, path in PATHS.items()}
        self.bodies = bodies()
        self.in_flight = 0

    async def call(self, plan: Plan) -> Result:
        self.in_flight += 1
        try:
            return await asyncio.wait_for(self._call(plan), HANG_S)
        except TimeoutError:
            return Result("VIOLATION no end within 30 s", str(plan))
        except aiohttp.ClientError as error:
            return Result(f"VIOLATION {type(error).__name__}", f"{plan}: {error}")
        finally:
            self.in_flight -= 1

    async def _call(self, plan: Plan) -> Result:
        if plan.api == "chat":
            headers = {"authorization": "Bearer k"}
        else:
            headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        headers["content-type"] = "application/json"
        if plan.step is not None:
            headers["x-gateway-step"] = plan.step
        body = self.bodies[plan.api, plan.family, plan.stream]
        request = self.session.post(self.urls[plan.api], data=body, headers=headers)
        if plan.leave == "early":
            try:  # cancelling aiohttp's request closes its connection: the gateway sees it go
                response = await asyncio.wait_for(request, plan.leave_after_s)
            except TimeoutError:
                return Result("left before the response head")
        else:
            response = await request
        async with response:
            result = await self._read(plan, response)
        if plan.leave == "early":
            result.meant = "early"
        return result

    async def _read(self, plan: Plan, response: aiohttp.ClientResponse) -> Result:
        is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
        if not is_stream:
            data = await response.read()
            return classify_json(response.status, response.headers, data, plan.api)
        received = bytearray()
        try:
            async for chunk in response.content.iter_any():
                received += chunk
                if plan.leave == "mid" and received.count(b"data:") >= 3:
                    if any(end in received for end in STREAM_ENDS):
                        break  # the whole stream outran the departure
                    response.close()
                    return Result("left mid-stream")
        except aiohttp.ClientPayloadError as error:
            tail = bytes(received[-200:]).decode(errors="replace")
            return Result("VIOLATION stream dropped without an error event", f"{error}: {tail}")
        result = classify_stream(bytes(received), plan.api)
        if plan.leave == "mid":
            result.meant = "mid"
        return result


# --------------------------------------------------------------------------- the run


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


# --------------------------------------------------------------------------- the report


def slope_mb_per_100k(samples: list[Sample]) -> float:
    """Least-squares RSS growth against requests done."""
    if len(samples) < 2:
        return 0.0
    xs = [s.done for s in samples]
    ys = [s.rss_mb for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return cov / var * 100_000


def warmed_up(run: Run) -> Sample:
    """The first sample after warm-up (for a run too short to have one, the middle one)."""
    calls = max(run.requests * WARMUP_SHARE, WARMUP_MIN)
    after = [s for s in run.samples if s.done >= calls]
    return after[0] if after else run.samples[len(run.samples) // 2]


@dataclass
class Verdict:
    name: str
    passed: bool
    detail: str
    judged: bool = True


def verdicts(run: Run) -> list[Verdict]:
    warm = warmed_up(run)
    end = run.samples[-1]
    drift = end.rss_mb - warm.rss_mb
    judged = run.requests >= 2 * WARMUP_MIN
    gateway_500s = sum(
        n
        for key, n in run.outcomes.items()
        if "the gateway's own" in key or bare(key).startswith("VIOLATION 500")
    )
    total = sum(run.outcomes.values())
    return [
        Verdict(
            "every request ended complete, with a well-formed error, or left by its client",
            run.violations == 0 and total == run.requests,
            f"{total:,} requests, {run.violations} violations",
        ),
        Verdict(
            "no upstream response open after the clients are done",
            run.settled_open == 0,
            f"emulator open responses {run.settled_open} after {run.settle_s:.1f} s",
        ),
        Verdict(
            f"gateway RSS flat after warm-up (within {RSS_TOLERANCE_MB:g} MB)",
            abs(drift) <= RSS_TOLERANCE_MB or not judged,
            f"{warm.rss_mb:.1f} MB after warm-up → {end.rss_mb:.1f} MB at the end "
            f"({drift:+.1f} MB)"
            + ("" if judged else f"; not judged: under {2 * WARMUP_MIN:,} calls, still warming"),
            judged,
        ),
        Verdict("no 500 from the gateway itself", gateway_500s == 0, f"{gateway_500s}"),
    ]


def verdict_word(check: Verdict) -> str:
    return "n/a" if not check.judged else "pass" if check.passed else "FAIL"


def markdown(run: Run, command: str) -> str:
    total = sum(run.outcomes.values())
    checks = verdicts(run)
    passed = all(check.passed for check in checks)
    warm = warmed_up(run)
    after = [s for s in run.samples if s.done >= warm.done]
    peak = max(run.samples, key=lambda s: s.open_upstream)
    above = sum(s.open_upstream > s.in_flight for s in run.samples)
    out = [
        "# Tollgate fault soak",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  ",
        *(f"{key}: {value}  " for key, value in machine(PACKAGES).items()),
        "",
        f"**{'PASS' if passed else 'FAIL'}** — {total:,} requests in {run.seconds:.0f} s "
        f"({total / run.seconds:,.0f} req/s) at concurrency {run.concurrency}. Other processes "
        f"on the machine used {run.foreign_cores:.2f} cores meanwhile.",
        "",
        "| check | | measured |",
        "|---|---|---|",
        *(f"| {c.name} | **{verdict_word(c)}** | {c.detail} |" for c in checks),
        "",
        "## Setup",
        "",
        f"- Faults at seeded rates (seed {FAULT_SEED}) on every upstream attempt, retries and "
        "hedges included: " + ", ".join(f"{k} {v:.0%}" for k, v in FAULT_RATES.items()) + ". "
        f"`slow` = first byte after {SLOW_FAULT_MS} ms, past the gateway's "
        f"{PROVIDER_TIMEOUT_S:g} s provider timeout; 429s carry `retry-after: 1`.",
        f"- Gateway retries: 3 attempts per model, backoff {BASE_DELAY_S:g} s doubling to "
        f"{MAX_DELAY_S:g} s; `synthesis` falls back to the small tier; `tool_decision` "
        f"hedges after {HEDGE_TTFT_MS} ms.",
        f"- Emulator latency `realistic` with a fast profile ({FAST['ttft_base_ms']} ms to "
        f"first token, {FAST['output_tokens_per_s']:,} tokens/s; 30-word replies).",
        f"- Client mix: {OPENAI_SHARE:.0%} OpenAI Chat Completions (`chat`), the rest "
        f"Anthropic Messages (`messages`); {STREAM_SHARE:.0%} streams; steps "
        f"{', '.join(str(s) for s in STEPS)} equally; {LEAVE_EARLY_SHARE:.0%} give up when "
        "the response head has not come within "
        f"{LEAVE_EARLY_MS[0]:g}–{LEAVE_EARLY_MS[1]:g} ms; {LEAVE_MID_SHARE:.0%} of the other "
        f"streams close after their first two or three events; {FAMILIES} system prompts.",
        "",
        "## Outcomes",
        "",
        "| outcome | requests | share |",
        "|---|--:|--:|",
    ]
    for outcome, n in sorted(run.outcomes.items(), key=lambda item: (-item[1], item[0])):
        out.append(f"| {outcome} | {n:,} | {n / total:.3%} |")
    if run.outran:
        out += [
            "",
            "Planned departures that the response outran (counted by what the client got): "
            + ", ".join(f"{kind} {n:,}" for kind, n in sorted(run.outran.items()))
            + ".",
        ]
    out += ["", "## Faults injected (emulator) and the gateway's metrics", ""]
    faults = run.emulator_state.get("faults", {})
    attempts = run.emulator_state.get("responses", 0)
    out.append(
        "Injected: "
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(faults.items()))
        + f" — {sum(faults.values()):,} in all. Responses the emulator paced: {attempts:,}."
    )
    retries = sum(run.metrics.get("gateway_retries_total", {}).values())
    upstream_errors = run.metrics.get("gateway_upstream_errors_total", {})
    out += [
        "",
        f"Gateway: `gateway_retries_total` {retries:,.0f}; `gateway_upstream_errors_total` by "
        "status: "
        + ", ".join(f"{status} {n:,.0f}" for status, n in sorted(upstream_errors.items()))
        + ".",
        "",
        "`gateway_requests_total` by status against the client's count:",
        "",
        "| status | gateway | client |",
        "|---|--:|--:|",
    ]
    client = client_statuses(run.outcomes)
    by_status = run.metrics.get("gateway_requests_total", {})
    for status in sorted(set(by_status) | set(client)):
        out.append(f"| {status} | {by_status.get(status, 0):,.0f} | {client.get(status, 0):,} |")
    out.append(f"| **all** | {sum(by_status.values()):,.0f} | {sum(client.values()):,} |")
    out += [
        "",
        "Client side: 200 = complete; client_closed = left; cut = a stream ended by the "
        "gateway's error event; others: the error's status. The gateway's 200s include the "
        "one readiness call before the run. They differ by the departures that race the "
        "response's end: a client that gives up just as the gateway sends its last byte "
        "counts as left here and as answered there; one that leaves before its request "
        "reached the gateway is not counted there at all.",
        "",
        "## Gateway RSS and open upstream responses",
        "",
        f"RSS at start {run.rss_start_mb:.1f} MB; after warm-up ({warm.done:,} requests) "
        f"{warm.rss_mb:.1f} MB; at the end {run.samples[-1].rss_mb:.1f} MB; peak "
        f"{max(s.rss_mb for s in run.samples):.1f} MB; slope after warm-up "
        f"{slope_mb_per_100k(after):+.2f} MB per 100,000 requests. Open upstream = responses "
        "the emulator is still sending; in flight = client requests not yet ended. Open "
        f"upstream at most {peak.open_upstream} (with {peak.in_flight} in flight); above the "
        f"calls in flight in {above} of {len(run.samples)} samples (a hedge has two).",
        "",
        "| s | requests done | RSS MB | open upstream | in flight |",
        "|--:|--:|--:|--:|--:|",
    ]
    step = max(1, len(run.samples) // 25)
    shown = run.samples[::step]
    if shown[-1] is not run.samples[-1]:
        shown.append(run.samples[-1])
    for s in shown:
        out.append(
            f"| {s.seconds:.0f} | {s.done:,} | {s.rss_mb:.1f} | {s.open_upstream} | {s.in_flight} |"
        )
    if run.examples:
        out += ["", "## Violations", ""]
        for outcome, examples in run.examples.items():
            out.append(f"- **{outcome}**")
            out += [f"  - `{example}`" for example in examples]
    return "\n".join(out)


def client_statuses(outcomes: Counter[str]) -> Counter[str]:
    """The client's outcomes named as the gateway's status label would name them."""
    out: Counter[str] = Counter()
    for key, n in outcomes.items():
        outcome = bare(key)
        if outcome in COMPLETE:
            out["200"] += n
        elif outcome in LEFT:
            out["client_closed"] += n
        elif outcome.startswith("error event"):
            out["cut"] += n
        elif outcome.startswith("error json"):
            out[outcome.split()[2]] += n
        else:
            out["violation"] += n
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, help="requests in all (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="5,000 requests")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "soak.md", help="the report (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        log("needs 2 cores and taskset (util-linux) to pin gateway and load apart")
        return 2
    requests = args.requests or (5_000 if args.quick else 100_000)
    os.sched_setaffinity(0, {LOAD_CORE})  # the load generator shares core 0 with the emulator
    command = " ".join(
        [".venv/bin/python bench/soak.py", *(argv if argv is not None else sys.argv[1:])]
    )
    with (
        tempfile.TemporaryDirectory(prefix="tollgate-soak-") as tmp,
        started(Path(tmp)) as (emulator, gateway),
    ):
        log(f"soak: {requests:,} requests at concurrency {args.concurrency}")
        run = asyncio.run(soak(gateway, emulator, requests, args.concurrency))
    text = markdown(run, command)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    return 0 if all(check.passed for check in verdicts(run)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
