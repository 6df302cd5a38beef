"""A small agent's calls through the gateway, with every kind of call the dashboards show.

Each round makes the same mix, in parallel: cached calls on two steps, a stream, a call
with no step header and one with an unknown step, a prompt that changes (a cache miss with
a cause), an upstream 529 and a stream cut mid-way; so every counter moves between scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any

import anthropic
import httpx2

SMALL = "claude-haiku-4-5"  # an alias: pinned to its snapshot upstream
LARGE = "claude-sonnet-4-6"
RETIRING = "claude-sonnet-4-5"
# Over the small model's 4,096-token minimum cacheable prefix (about 4 characters a token).
POLICY = "Refunds within 30 days. Escalate fraud to a human. Never share card numbers.\n" * 240
QUESTION = [{"role": "user", "content": "Where is my order?"}]


def _create(client: anthropic.Anthropic, step: str | None, **kwargs: Any) -> None:
    headers = {"x-gateway-step": step} if step else {}
    headers.update(kwargs.pop("extra_headers", {}))
    client.messages.create(max_tokens=20, messages=QUESTION, extra_headers=headers, **kwargs)  # type: ignore[arg-type]


def _stream(client: anthropic.Anthropic, step: str, **kwargs: Any) -> None:
    headers = {"x-gateway-step": step, **kwargs.pop("extra_headers", {})}
    with client.messages.stream(
        max_tokens=60,
        messages=QUESTION,  # type: ignore[arg-type]
        extra_headers=headers,
        **kwargs,
    ) as stream:
        stream.get_final_message()


def one_round(client: anthropic.Anthropic, round_no: int, tag: str, faults: bool = True) -> None:
    """The round's calls, in parallel as an agent's independent steps would be; `faults`
    adds the upstream 529 and the cut stream."""
    rules = "".join(f"Rule {n}.\n" for n in range(round_no))  # the planning prompt grows

    def upstream_529() -> None:
        with suppress(anthropic.APIStatusError):
            _create(client, "routing", model=SMALL, extra_headers={"x-emulator-fault": "529"})

    def retiring_model() -> None:
        # Retires 2026-11-30: before that a call, after it the emulator's 404 like the API's.
        with suppress(anthropic.NotFoundError):
            _create(client, "summarization", model=RETIRING, system=f"Summarize {tag}.")

    def stream_cut() -> None:
        with suppress(anthropic.APIError, httpx2.TransportError):
            _stream(client, "synthesis", model=LARGE, extra_headers={"x-emulator-fault": "cut"})

    calls: list[Callable[[], None]] = [
        partial(_create, client, "routing", model=SMALL, system=f"Routing {tag}.\n{POLICY}"),
        partial(_stream, client, "synthesis", model=LARGE, system=f"Writer {tag}.\n{POLICY}"),
        partial(_create, client, None, model=LARGE, system=f"Assistant {tag}.\n{POLICY}"),
        partial(_create, client, "my_own_step", model=LARGE, system=f"Custom {tag}.\n{POLICY}"),
        # misses the cache each round as system_changed
        partial(_create, client, "planning", model=LARGE, system=f"Plan {tag}.\n{POLICY}{rules}"),
    ]
    if faults:
        calls += [upstream_529, stream_cut, retiring_model]
    with ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


def drive(gateway_url: str, api_key: str, rounds: int, pause_s: float) -> None:
    """`rounds` rounds of calls through the gateway, `pause_s` apart."""
    with anthropic.Anthropic(base_url=gateway_url, api_key=api_key, max_retries=0) as client:
        for round_no in range(rounds):
            if round_no:
                time.sleep(pause_s)
            one_round(client, round_no, tag=api_key[-8:])
