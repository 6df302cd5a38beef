"""Learned state under a flood: how much of what one caller sends the gateway keeps.

Run from the repository root:

    .venv/bin/python bench/learned_memory.py
    .venv/bin/python bench/learned_memory.py --prompts 1000 --tools 150 --tool-mb 1

`gateway emulate --latency none` and `gateway serve` (one worker, the emulator as upstream, no
gateway keys: the pass-through mode, where every caller is the credential it sends) run as
subprocesses on free loopback ports, the gateway alone on core 1 (`taskset`). With the
official anthropic SDK, one credential sends two floods, one request after another:

1. `--prompts` requests, each with a distinct system prompt of 10 KB (950 lines, each
   unique): every request is a new prompt family with lines to count;
2. `--tools` requests, each with a unique tool of `--tool-mb` MB (its description), on a
   model with a 1M-token context: the emulator accepts them, so the gateway learns each
   tool's first-seen form;
3. the same on a 200k-token model: the emulator refuses each (400, prompt too long), as a
   provider refuses calls with an unknown key: the gateway learns nothing from them.

With `--require-gateway-key`, the gateway requires gateway keys and the floods send none:
every call is refused with 401 (nothing is learned before authentication).

The gateway's RSS (/proc/<pid>/statm) is read after a warm-up, after each flood, and the
bytes of learned state it accounts (`gateway_learned_state_bytes`, where /metrics has it).
Not a timed test: it prints numbers, and exits 1 if a flood grew RSS past --limit-mb.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
from harness.ports import HOST, free_port
from harness.process import pinned, rss_mb
from harness.progress import log
from harness.proxies import GATEWAY_CORE, LOAD_CORE, Server, serving

MODEL = "claude-haiku-4-5"
LARGE_CONTEXT_MODEL = "claude-sonnet-5-5"  # 1M input tokens: a 1 MB tool fits
PROMPT_LINES = 950
LINE_CHARS = 10  # 950 lines of 10 characters and a newline: about 10 KB


@contextmanager
def started(logs: Path, require_gateway_key: bool) -> Iterator[tuple[Server, Server]]:
    """The emulator and `gateway serve` in front of it, pinned, until the block ends."""
    emulator_port = free_port()
    command = [sys.executable, "-m", "gateway", "emulate", "--port", str(emulator_port)]
    port = free_port()
    env = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SERVER__WORKERS": "1",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": f"http://{HOST}:{emulator_port}",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    if require_gateway_key:  # no key is created: every call is refused with 401
        env["GATEWAY_STATE__REQUIRE_GATEWAY_KEY"] = "true"
        env["GATEWAY_STATE__KEYS_FILE"] = str(logs / "keys.json")
    serve = pinned(GATEWAY_CORE, [sys.executable, "-m", "gateway", "serve"])
    emulate = pinned(LOAD_CORE, [*command, "--latency", "none"])
    with (
        serving(
            "emulator",
            emulate,
            emulator_port,
            ready=f"http://{HOST}:{emulator_port}/emulator/state",
        ) as emulator,
        serving("gateway", serve, port, env, ready=f"http://{HOST}:{port}/healthz") as gateway,
    ):
        yield emulator, gateway


def prompt() -> str:
    tag = uuid.uuid4().hex[:6]  # short lines, each unique: the most lines to count per byte
    return "\n".join(f"{i:03d} {tag}".ljust(LINE_CHARS, "x") for i in range(PROMPT_LINES))


def tool(megabytes: float) -> dict[str, object]:
    name = "t_" + uuid.uuid4().hex[:16]
    return {
        "name": name,
        "description": (uuid.uuid4().hex * int(megabytes * 1e6 / 32 + 1))[: int(megabytes * 1e6)],
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }


def learned_bytes(gateway: Server) -> float | None:
    text = httpx.get(f"http://{HOST}:{gateway.port}/metrics", timeout=10).text
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_learned_state_bytes")
    ]
    return sum(values) if values else None


def send(client: anthropic.Anthropic, statuses: Counter[int], **fields: Any) -> None:
    """One call; an error status (a 1 MB tool is past a 200k model's context: 400) is
    counted, not raised."""
    try:
        client.messages.create(**{"model": MODEL, "max_tokens": 16, **fields})
        statuses[200] += 1
    except anthropic.APIStatusError as error:
        statuses[error.status_code] += 1


def report(gateway: Server, label: str, baseline: float) -> float:
    time.sleep(1.0)  # the last responses' buffers released
    rss = rss_mb(gateway.proc.pid)
    held = learned_bytes(gateway)
    accounted = f", learned state accounted {held / 1e6:.1f} MB" if held is not None else ""
    print(f"{label:<28} RSS {rss:7.1f} MB ({rss - baseline:+7.1f} MB){accounted}", flush=True)
    return rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--tools", type=int, default=150)
    parser.add_argument("--tool-mb", type=float, default=1.0)
    parser.add_argument("--limit-mb", type=float, default=50.0)
    parser.add_argument(
        "--require-gateway-key",
        action="store_true",
        help="the gateway requires gateway keys and the floods send none: all answered 401",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as logs,
        started(Path(logs), args.require_gateway_key) as (_, gateway),
    ):
        base = f"http://{HOST}:{gateway.port}"
        client = anthropic.Anthropic(base_url=base, api_key="bench-tenant-a", max_retries=0)
        messages = [{"role": "user", "content": "hi"}]
        statuses: Counter[int] = Counter()
        for _ in range(20):  # warm-up: imports, pools, first allocations
            send(client, statuses, system=prompt()[:200], messages=messages)
        before = report(gateway, "after warm-up", rss_mb(gateway.proc.pid))
        log(f"flood 1: {args.prompts} distinct 10 KB system prompts")
        for _ in range(args.prompts):
            send(client, statuses, system=prompt(), messages=messages)
        after_prompts = report(gateway, f"after {args.prompts} prompts", before)
        log(f"flood 2: {args.tools} unique tools of {args.tool_mb} MB on a 1M-token model")
        for _ in range(args.tools):
            tools = [tool(args.tool_mb)]
            send(client, statuses, model=LARGE_CONTEXT_MODEL, messages=messages, tools=tools)
        after_tools = report(gateway, f"after {args.tools} tools", after_prompts)
        log(f"flood 3: {args.tools} unique tools of {args.tool_mb} MB on a 200k-token model")
        for _ in range(args.tools):
            send(client, statuses, messages=messages, tools=[tool(args.tool_mb)])
        after_refused = report(gateway, f"after {args.tools} more tools", after_tools)
        print(f"statuses: {dict(sorted(statuses.items()))}")
        grew = max(after_prompts - before, after_tools - after_prompts, after_refused - after_tools)
        verdict = "ok" if grew <= args.limit_mb else "FAIL"
        print(f"largest growth of a flood: {grew:.1f} MB (limit {args.limit_mb:.0f}): {verdict}")
        return 0 if grew <= args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
