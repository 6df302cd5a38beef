"""Budget enforcement under a burst: 100 concurrent calls on one gateway key.

Run from the repository root (starts its own redis-server, emulator and gateway on free
loopback ports, and stops them):

    taskset -c 1 .venv/bin/python bench/burst.py
    taskset -c 1 .venv/bin/python bench/burst.py --runs 3 --calls 100

Two cases, each with the in-memory ledger (keys file) and with Redis:

- fresh: a new key with a $0.002 daily budget, 100 cheap calls at once (max_tokens 20);
- warm: a new key with a $0.01 budget, one cheap call, then 100 dear calls at once
  (~2,000 input tokens each, about 60 times the cheap call).

Reported per run: calls served, what they cost (the gateway's x-gateway-cost-usd), that
spend as a multiple of the budget, the overspend in calls (spend past the budget over the
dearest call; <= 1 is the guarantee), and for Redis what the ledger recorded once the
background settles landed (it must equal what was served).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
from harness import REDIS_SERVER, free_port, gateway_process, redis_server

REPO = Path(__file__).resolve().parent.parent
MODEL = "claude-sonnet-4-6"
PROVIDER_KEY = "sk-ant-bench-" + uuid.uuid4().hex
FRESH_BUDGET = 0.002
WARM_BUDGET = 0.01


def gateway_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def body(text: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": f"REPLY: ok\n{text}"}],
    }


async def burst(url: str, key: str, bodies: list[dict[str, Any]]) -> list[float]:
    """The costs of the calls served (the others were refused: 429)."""
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/messages", json=b, headers=headers) for b in bodies)
        )
    statuses = {r.status_code for r in responses} - {200, 429}
    if statuses:
        print(f"  unexpected statuses: {sorted(statuses)}", file=sys.stderr)
    return [float(r.headers["x-gateway-cost-usd"]) for r in responses if r.status_code == 200]


def recorded(redis_url: str, prefix: str, name: str, expected: float) -> float:
    """The key's spend in Redis once the background settles landed (waits up to 10 s)."""
    day = time.strftime("d%Y%m%d", time.gmtime())
    deadline = time.monotonic() + 10
    with redis.Redis.from_url(redis_url) as client:
        while True:
            spent = int(client.get(f"{prefix}spend:key:{name}:{day}") or 0) / 1e9
            if abs(spent - expected) < 1e-6 or time.monotonic() > deadline:
                return spent
            time.sleep(0.05)


def run_case(
    case: str, url: str, env: dict[str, str], calls: int, redis_url: str | None
) -> dict[str, Any]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    budget = FRESH_BUDGET if case == "fresh" else WARM_BUDGET
    key = gateway_cli(env, "keys", "create", "--name", name, "--daily-budget-usd", str(budget))
    time.sleep(1.1)  # the keys file is re-read once a second
    costs: list[float] = []
    if case == "warm":
        costs += asyncio.run(burst(url, key, [body("cheap")]))
        time.sleep(0.2)  # its cost settles: the next calls see it
        bodies = [body("x " * 4000 + uuid.uuid4().hex) for _ in range(calls)]
    else:
        bodies = [body(f"burst {n} {uuid.uuid4().hex}") for n in range(calls)]
    served = asyncio.run(burst(url, key, bodies))
    costs += served
    spent = sum(costs)
    result = {
        "case": case,
        "served": len(served),
        "spent": spent,
        "budget": budget,
        "multiple": spent / budget,
        "overspend_calls": max(0.0, spent - budget) / max(costs) if costs else 0.0,
    }
    if redis_url is not None:
        result["recorded"] = recorded(redis_url, env["GATEWAY_STATE__KEY_PREFIX"], name, spent)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=100)
    options = parser.parse_args()
    base = {**os.environ, "GATEWAY_METERING__CALL_LOG": "off"}
    base["GATEWAY_PROVIDERS__ANTHROPIC__API_KEY"] = PROVIDER_KEY
    if REDIS_SERVER is None:
        raise SystemExit("needs redis-server on PATH")
    emulator_port = free_port()
    rows: list[tuple[str, dict[str, Any]]] = []
    with (
        gateway_process(
            "emulate", "--port", str(emulator_port), port=emulator_port, env=base, timeout_s=30
        ) as emulator_url,
        redis_server() as store,
        tempfile.TemporaryDirectory() as directory,
    ):
        redis_url = store.url
        ledgers = {
            "memory": {"REDIS_URL": "", "GATEWAY_STATE__KEYS_FILE": f"{directory}/keys.json"},
            "redis": {
                "GATEWAY_STATE__REDIS_URL": redis_url,
                "GATEWAY_STATE__KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}:",
            },
        }
        for ledger, settings in ledgers.items():
            port = free_port()
            env = {
                **base,
                **settings,
                "GATEWAY_SERVER__START_EMULATOR": "false",
                "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": emulator_url,
            }
            with gateway_process(
                "serve",
                "--port",
                str(port),
                port=port,
                env=env,
                ready_path="/healthz",
                timeout_s=30,
            ) as url:
                for case in ("fresh", "warm"):
                    for _ in range(options.runs):
                        redis_url_or_none = redis_url if ledger == "redis" else None
                        result = run_case(case, url, env, options.calls, redis_url_or_none)
                        rows.append((ledger, result))
                        print(ledger, result, file=sys.stderr)
    print(f"\n{options.calls} concurrent calls per run; spend as a multiple of the budget\n")
    print("| ledger | case | budget | served | spent | x budget | overspend (calls) | recorded |")
    print("|---|---|---|---|---|---|---|---|")
    for ledger, r in rows:
        recorded_text = f"${r['recorded']:.6f}" if "recorded" in r else "-"
        print(
            f"| {ledger} | {r['case']} | ${r['budget']} | {r['served']} | ${r['spent']:.6f}"
            f" | {r['multiple']:.2f} | {r['overspend_calls']:.2f} | {recorded_text} |"
        )


if __name__ == "__main__":
    main()
