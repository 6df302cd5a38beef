"""Retry amplification under a persistent outage: how many requests reach a provider that
fails every call (the emulator at `fault_rates: {"529": 1.0}`), per request a client sent.

Starts the emulator and `gateway serve` on free loopback ports, then for `--duration`
seconds runs a client through the gateway, again each time it gives up:

- `claude`: the real Claude Code (`claude -p`, HOME in a temp folder, pointed only at the
  gateway), from /work/scratch/clients, `node_modules/.bin` or PATH (`--claude PATH`);
- `python`: the official `anthropic` SDK with its default retries.

Client requests are the gateway's `gateway_requests_total`, upstream requests the
emulator's injected faults (/emulator/state). `--no-limits` turns the retry budget and the
circuit breaker off (the gateway as it was before them).

    .venv/bin/python bench/retry_amplification.py --client claude --duration 150
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from harness import emulator, free_port, gateway_process

MODEL = "claude-sonnet-4-6"


def claude_binary(given: str | None) -> str:
    for candidate in (
        given,
        "/work/scratch/clients/node_modules/.bin/claude",
        "node_modules/.bin/claude",
        shutil.which("claude"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("claude not found: npm install @anthropic-ai/claude-code, or --claude PATH")


def run_claude(binary: str, gateway_url: str, until: float) -> int:
    runs = 0
    with tempfile.TemporaryDirectory(prefix="tollgate-claude-") as home:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "ANTHROPIC_BASE_URL": gateway_url,
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        while (left := until - time.monotonic()) > 1:
            runs += 1
            try:
                subprocess.run(
                    [binary, "-p", "say hi", "--model", MODEL],
                    env=env,
                    cwd=home,
                    timeout=left,
                    capture_output=True,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                break
    return runs


def run_python(gateway_url: str, until: float) -> int:
    import anthropic

    client = anthropic.Anthropic(base_url=gateway_url, api_key="sk-ant-bench")
    runs = 0
    while until - time.monotonic() > 1:
        runs += 1
        with contextlib.suppress(anthropic.APIError):
            client.messages.create(
                model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
            )
    return runs


def client_requests(gateway_url: str) -> float:
    total = 0.0
    for line in httpx.get(gateway_url + "/metrics").text.splitlines():
        if line.startswith("gateway_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=("claude", "python"), default="claude")
    parser.add_argument("--duration", type=float, default=150.0)
    parser.add_argument("--claude", help="the claude binary")
    parser.add_argument("--no-limits", action="store_true", help="no retry budget, no breaker")
    args = parser.parse_args()
    binary = claude_binary(args.claude) if args.client == "claude" else ""
    emulator_env = {"GATEWAY_EMULATOR__FAULT_RATES": json.dumps({"529": 1.0})}
    with emulator(env=emulator_env) as upstream:
        port = free_port()
        env = {
            "GATEWAY_SERVER__START_EMULATOR": "false",
            "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream,
            "GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream,
            "GATEWAY_ROUTING__REFRESH_LIFECYCLE": "false",
        }
        if args.no_limits:
            env["GATEWAY_ROUTING__RETRIES__BREAKER_FAILURES"] = "0"
            env["GATEWAY_ROUTING__RETRIES__BUDGET_MIN_PER_S"] = "1000000"
        serve = ("serve", "--port", str(port))
        with gateway_process(*serve, port=port, env=env, ready_path="/healthz") as url:
            until = time.monotonic() + args.duration
            if args.client == "claude":
                runs = run_claude(binary, url, until)
            else:
                runs = run_python(url, until)
            sent = client_requests(url)
            faults = httpx.get(upstream + "/emulator/state").json()["faults"]
    reached = sum(faults.values())
    limits = "off" if args.no_limits else "on"
    print(
        f"client={args.client} duration={args.duration:g}s limits={limits} runs={runs} "
        f"client_requests={sent:g} upstream_requests={reached} "
        f"ratio={reached / sent if sent else float('nan'):.2f}"
    )


if __name__ == "__main__":
    main()
