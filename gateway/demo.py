"""`gateway demo`: the emulator and the gateway together, and a sample agent session through both.

A naive support agent (the time in its system prompt, no cache_control, an unpinned
alias, every step on the large model — its routing step, which classifies each message,
included) talks to the emulator once directly and once through the gateway; the two
columns of the table are what pointing `base_url` at Tollgate changed. Then it keeps
serving, so an SDK can be pointed at it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx

from gateway.metering.pricing import Pricing
from gateway.settings import Settings
from gateway.wire.usage import Usage

MODEL = "claude-opus-4-5"  # an unpinned alias, as a naive client sends it, for every step
# Over the model's 4,096-token minimum cacheable prefix.
POLICY = " ".join(
    f"Policy {i}: answer billing questions precisely, cite the refund rules, escalate fraud."
    for i in range(240)
)
QUESTIONS = ("Where is my refund?", "It has been ten days.", "Can you escalate it?")
CLASSIFY = "Classify the customer's last message as billing, shipping or fraud. One word."
PRICING = Pricing.load()


@dataclass
class Tally:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    ttft_ms: list[float] = field(default_factory=list)
    rewrites: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    cost: float = 0.0

    def add(self, response: httpx.Response) -> dict[str, object]:
        """Counts one call's tokens, cost and what the gateway did; returns the message."""
        response.raise_for_status()
        reply: dict[str, object] = response.json()
        usage = reply["usage"]
        assert isinstance(usage, dict)
        counted = Usage(
            input=usage["input_tokens"],
            output=usage["output_tokens"],
            cache_read=usage.get("cache_read_input_tokens") or 0,
            cache_write_5m=usage.get("cache_creation_input_tokens") or 0,
        )
        self.input += counted.input
        self.output += counted.output
        self.cache_read += counted.cache_read
        self.cache_write += counted.cache_write_5m
        self.cost += PRICING.cost("anthropic", str(reply["model"]), counted) or 0.0
        self.models.add(str(reply["model"]))
        self.ttft_ms.append(float(response.headers.get("x-emulator-ttft-ms", "nan")))
        rewrites = response.headers.get("x-gateway-rewrites", "").split(",")
        self.rewrites |= set(filter(None, rewrites))
        return reply

    @property
    def hit_ratio(self) -> float:
        prompt = self.input + self.cache_read + self.cache_write
        return self.cache_read / prompt if prompt else 0.0


async def conversation(client: httpx.AsyncClient, user: str, tally: Tally) -> None:
    messages: list[dict[str, str]] = []
    for question in QUESTIONS:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        system = f"You are Acme's support agent.\nCurrent time: {now}\nCustomer: {user}\n{POLICY}"
        messages.append({"role": "user", "content": question})
        route = {"model": MODEL, "max_tokens": 5, "system": CLASSIFY, "messages": messages}
        tally.add(await client.post("/v1/messages", json=route, headers=STEP_ROUTING))
        body = {"model": MODEL, "max_tokens": 60, "system": system, "messages": messages}
        reply = tally.add(await client.post("/v1/messages", json=body, headers=STEP_ANSWER))
        content = reply["content"]
        assert isinstance(content, list)
        messages.append({"role": "assistant", "content": content[0]["text"]})
        await asyncio.sleep(0.5)


STEP_ROUTING = {"x-gateway-step": "routing"}  # the cascade sends it to the small tier
STEP_ANSWER = {"x-gateway-step": "chat"}  # keeps the client's model (pinned)


async def session(base_url: str, key: str) -> Tally:
    tally = Tally()
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        for users in (("Ann", "Bo", "Cy"), ("Di", "Ed", "Flo")):
            await asyncio.gather(*(conversation(client, user, tally) for user in users))
    return tally


def table(direct: Tally, through: Tally) -> str:
    rows = [
        ("cost of the session", f"${direct.cost:.4f}", f"${through.cost:.4f}"),
        ("cache hit ratio", f"{direct.hit_ratio:.0%}", f"{through.hit_ratio:.0%}"),
        ("time to first token p50", f"{statistics.median(direct.ttft_ms):.0f} ms",
         f"{statistics.median(through.ttft_ms):.0f} ms"),
        ("rewrites applied", "-", ", ".join(sorted(through.rewrites)) or "-"),
        ("models that served it", ", ".join(sorted(direct.models)),
         ", ".join(sorted(through.models))),
    ]  # fmt: skip
    rows.insert(0, ("", "direct", "through Tollgate"))
    width, a_width, b_width = (max(len(row[k]) for row in rows) for k in range(3))
    lines = [f"{name:{width}}  {a:>{a_width}}  {b:>{b_width}}" for name, a, b in rows]
    saved = 1 - through.cost / direct.cost if direct.cost else 0.0
    lines.append(f"\nTollgate saved {saved:.0%} of this session's cost.")
    return "\n".join(lines)


def run_demo(settings: Settings) -> int:
    emulator_url = f"http://{settings.emulator.host}:{settings.emulator.port}"
    gateway_url = f"http://{settings.server.host}:{settings.server.port}"
    env = {
        **os.environ,
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": emulator_url,
        "GATEWAY_PROVIDERS__OPENAI__BASE_URL": emulator_url,  # both wires: Codex, openai SDK
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    # SIGTERM must run the cleanup below too, or the two servers would outlive the demo.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    command = [sys.executable, "-m", "gateway"]
    port = str(settings.emulator.port)
    processes = [
        subprocess.Popen([*command, "emulate", "--port", port, "--latency", "realistic"], env=env),
        subprocess.Popen([*command, "serve", "--port", str(settings.server.port)], env=env),
    ]
    try:
        _wait_until_up(emulator_url + "/emulator/state", gateway_url + "/healthz")
        print("running a naive support agent, once directly and once through Tollgate ...")
        direct = asyncio.run(session(emulator_url, "demo-direct"))
        through = asyncio.run(session(gateway_url, "demo-gateway"))
        print(table(direct, through), flush=True)
        print(
            f"\nTollgate is serving. Point an SDK at it:\n"
            f'  anthropic.Anthropic(base_url="{gateway_url}", api_key="any-key")\n'
            f'  openai.OpenAI(base_url="{gateway_url}/v1", api_key="any-key")\n'
            f"Name each step with the x-gateway-step header (routing, tool_decision,"
            f" synthesis, ...).\n"
            f"Metrics: {gateway_url}/metrics   Ctrl-C stops.",
            flush=True,
        )
        processes[1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _wait_until_up(*urls: str) -> None:
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
