"""The servers a benchmark measures, each pinned to a core: the emulator (the upstream),
`gateway serve` (this tree's or another commit's), the do-nothing proxies of
bench/passthrough.py, and LiteLLM's proxy (bench/harness/litellm.py). A server counts as up
once a real call through it succeeds: a listening socket alone is not readiness."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .ports import HOST, free_port
from .process import START_TIMEOUT_S, Ready, pinned, started
from .servers import RELAY_SETTINGS, gateway_command

REPO = Path(__file__).resolve().parents[2]
LOAD_CORE, GATEWAY_CORE = 0, 1  # emulator and load generators | the server under test
ANTHROPIC_VERSION = "2026-10-21"
READY_BODY = (
    b'{"model":"claude-haiku-4-5","max_tokens":200,"messages":[{"role":"user","content":"hi"}]}'
)


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    api_key: str = "k"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + "/v1/messages"

    def headers(self, path: str = "/v1/messages") -> list[tuple[str, str]]:
        """A call's headers on `path`, with this server's key."""
        return request_headers(self.api_key, path)


def request_headers(api_key: str, path: str = "/v1/messages") -> list[tuple[str, str]]:
    """An Anthropic Messages call's headers, or an OpenAI one's (a bearer key) elsewhere."""
    if path != "/v1/messages":
        return [("authorization", f"Bearer {api_key}"), ("content-type", "application/json")]
    return [
        ("x-api-key", api_key),
        ("anthropic-version", ANTHROPIC_VERSION),
        ("content-type", "application/json"),
    ]


def answers(port: int, api_key: str) -> Callable[[], bool]:
    """A readiness check: one small Messages call through the server returns 200."""
    url, headers = f"http://{HOST}:{port}/v1/messages", dict(request_headers(api_key))

    def check() -> bool:
        try:
            return httpx.post(url, content=READY_BODY, headers=headers, timeout=5).is_success
        except httpx.TransportError:
            return False

    return check


@contextmanager
def serving(
    name: str,
    command: Sequence[str],
    port: int,
    env: dict[str, str] | None = None,
    *,
    api_key: str = "k",
    ready: Ready | None = None,
    cwd: Path = REPO,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Server]:
    """Runs `command` (a server on `port`) until the block ends; yields it once `ready`, by
    default a Messages call through it, succeeds."""
    check = ready if ready is not None else answers(port, api_key)
    with started(list(command), check, env, timeout_s, cwd) as process:
        yield Server(name, port, process, api_key)


def emulator_server(
    *flags: str, env: dict[str, str] | None = None, core: int = LOAD_CORE
) -> AbstractContextManager[Server]:
    """`gateway emulate --latency none FLAGS` pinned to `core`."""
    port = free_port()
    command, _ = gateway_command("emulate", "--port", str(port), "--latency", "none", *flags)
    return serving("emulator", pinned(core, command), port, env)


def gateway_server(
    upstream: Server,
    transport: str = "aiohttp",
    env: dict[str, str] | None = None,
    *,
    name: str | None = None,
    source: Path | None = None,
    api_key: str = "k",
) -> AbstractContextManager[Server]:
    """`gateway serve` (one worker, the given httpx transport) relaying Anthropic and OpenAI
    calls to `upstream`, alone on the gateway core. With `source`, the gateway package of that tree
    (bench/harness/checkout.py) runs instead of this one, from that directory."""
    port = free_port()
    command, source_env = gateway_command("serve", source=source)
    settings = {
        **RELAY_SETTINGS,
        **source_env,
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SERVER__WORKERS": "1",
        "GATEWAY_SERVER__UPSTREAM_TRANSPORT": transport,
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream.base_url,
        "GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream.base_url,
        **(env or {}),
    }
    return serving(
        name or f"gateway-{transport}",
        pinned(GATEWAY_CORE, command),
        port,
        settings,
        api_key=api_key,
        cwd=source or REPO,
    )


def floor_server(
    client: str, upstream: Server, env: dict[str, str] | None = None
) -> AbstractContextManager[Server]:
    """bench/passthrough.py, a do-nothing proxy relaying through `client` (httpx-aiohttp or
    aiohttp), pinned like the gateway; `env` adds to its environment."""
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "passthrough.py"), "--client", client]
    command += ["--port", str(port), "--upstream", upstream.base_url]
    settings = {"PYTHONPATH": str(REPO), **(env or {})}  # the gateway.wire it imports: this tree's
    return serving(f"floor-{client}", pinned(GATEWAY_CORE, command), port, settings)


def gateway_key(env: dict[str, str]) -> str:
    """A gateway key with a budget and rate limits, so every call is admitted and charged."""
    command, _ = gateway_command("keys", "create", "--name", "bench")
    command += ["--daily-budget-usd", "1000000", "--rpm", "100000000", "--tpm", "100000000000"]
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]
