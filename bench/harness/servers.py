"""`gateway emulate` and `gateway serve` as subprocesses of the CLI, as the integration tests
and the benchmarks run them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .ports import HOST, free_port
from .process import START_TIMEOUT_S, started

# `gateway serve` in front of another upstream than the emulator it would start itself.
RELAY_SETTINGS = {"GATEWAY_SERVER__START_EMULATOR": "false"}


@contextmanager
def server_process(
    command: list[str],
    base_url: str,
    ready_path: str,
    env: dict[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
    cwd: Path | None = None,
) -> Iterator[str]:
    """Runs `command` until the block ends; yields `base_url` once `ready_path` answers 2xx-4xx."""
    with started(command, base_url + ready_path, env, timeout_s, cwd):
        yield base_url


def gateway_command(*args: str, source: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """`python -m gateway ARGS`, and the environment it needs: with `source`, the gateway
    package in that directory (another commit's tree) instead of the installed one."""
    env = {} if source is None else {"PYTHONPATH": str(source)}
    return [sys.executable, "-m", "gateway", *args], env


@contextmanager
def gateway_process(
    *args: str,
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/emulator/state",
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[str]:
    """Runs `python -m gateway ARGS` until the block ends; yields its base URL once it answers."""
    command, _ = gateway_command(*args)
    with server_process(command, f"http://{HOST}:{port}", ready_path, env, timeout_s) as url:
        yield url


def relay_settings(upstream_url: str) -> dict[str, str]:
    """`gateway serve`'s environment for relaying both providers' calls to `upstream_url`."""
    return {
        **RELAY_SETTINGS,
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream_url,
        "GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream_url,
    }


@contextmanager
def emulator(*flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`gateway emulate FLAGS` on a free port; yields its base URL."""
    port = free_port()
    with gateway_process("emulate", "--port", str(port), *flags, env=env, port=port) as url:
        yield url


@contextmanager
def gateway(
    upstream_url: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """`gateway serve` relaying Anthropic and OpenAI calls to `upstream_url` (on `port`, or a
    free one), as the integration tests drive it; yields its base URL."""
    port = port or free_port()
    settings = {
        **relay_settings(upstream_url),
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
