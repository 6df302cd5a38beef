"""The soak's parameters, and the emulator and gateway it runs from one generated config."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from harness.ports import HOST, free_port
from harness.process import pinned
from harness.proxies import GATEWAY_CORE, LOAD_CORE, REPO, Server, serving

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
