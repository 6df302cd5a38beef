"""Real servers on loopback ports for the integration tests: each a subprocess of the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server_process(
    command: list[str], base_url: str, ready_path: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Runs `command` until the block ends; yields `base_url` once `ready_path` answers 2xx-4xx."""
    # A file, not a pipe: a server that logs a lot must never block on a full pipe.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this statement; closed below
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise RuntimeError(f"{' '.join(command)} exited early:\n{output}")
            try:
                if httpx.get(base_url + ready_path, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{' '.join(command)} did not become ready")
            time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def gateway_process(
    *args: str, port: int, env: dict[str, str] | None = None, ready_path: str = "/emulator/state"
) -> Iterator[str]:
    """Runs `python -m gateway ARGS` until the block ends; yields its base URL once it answers."""
    command = [sys.executable, "-m", "gateway", *args]
    with server_process(command, f"http://127.0.0.1:{port}", ready_path, env) as url:
        yield url


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
