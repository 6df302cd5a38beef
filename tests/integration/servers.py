"""The emulator and the gateway as the integration tests run them: each a subprocess of the
CLI (bench/harness.py starts and stops them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.harness import free_port, gateway_process


@contextmanager
def emulator(*flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    with gateway_process("emulate", "--port", str(port), *flags, env=env, port=port) as url:
        yield url


@contextmanager
def gateway(
    upstream_url: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """`gateway serve` relaying Anthropic and OpenAI calls to `upstream_url` (on `port`, or a
    free one)."""
    port = port or free_port()
    settings = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream_url,
        "GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream_url,
        # Tests drive the emulator's faults and clock through the gateway (x-emulator-*).
        "GATEWAY_PROVIDERS__ANTHROPIC__EMULATOR": "true",
        "GATEWAY_PROVIDERS__OPENAI__EMULATOR": "true",
        # Tests count each call's own attempts: the retry budget and the breakers, whose
        # state spans calls (and so tests), are off unless a test turns them on.
        "GATEWAY_ROUTING__RETRIES__BUDGET_MIN_PER_S": "1000000",
        "GATEWAY_ROUTING__RETRIES__BREAKER_FAILURES": "0",
        **(env or {}),
    }
    with gateway_process(
        "serve", "--port", str(port), env=settings, port=port, ready_path="/healthz"
    ) as url:
        yield url


def metric(gateway_url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in httpx.get(gateway_url + "/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
