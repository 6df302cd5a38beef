"""The bodies bench/stages.py times each step on, and the emulator's responses to them.

A 1 KB question (Messages and Chat Completions), a 115 KB filler body (in a user message,
and as a system prompt), and the recorded Claude Code and Codex sessions' first and largest
turns (tests/support/fixtures.py), each with the session's calls before it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import httpx
import orjson
from workloads.prose import Prose

from gateway.emulator.app import create_emulator_app
from gateway.settings import Settings
from gateway.wire.formats import ANTHROPIC_MESSAGES, OPENAI_CHAT, OPENAI_RESPONSES, WireFormat
from tests.support.fixtures import FIXTURES, Call, load

KB = 1024
FILLER_KB = 115


@dataclass(frozen=True)
class Body:
    name: str
    wire: WireFormat
    path: str
    raw: bytes
    earlier: tuple[bytes, ...] = ()  # the session's calls before it, replayed to warm up


SYSTEM = ("You are a concise assistant for an internal tool. " * 8).strip()
QUESTION = ("Summarize the following note in one sentence. " * 10).strip()


def small_body() -> bytes:
    """A 1 KB question with a short system prompt, as a small app sends it."""
    return orjson.dumps(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 200,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": QUESTION}],
            "stream": True,
        }
    )


def small_chat_body() -> bytes:
    """The same on Chat Completions, without include_usage: the gateway asks for it and
    filters what that adds out of the stream."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    return orjson.dumps(
        {"model": "gpt-5.4", "max_completion_tokens": 200, "messages": messages, "stream": True}
    )


def filler_body(kb: int = FILLER_KB) -> bytes:
    """One long user message of prose-like filler (`kb` KB in all), streaming."""
    sentence = "The gateway relays every byte of a long prompt to its provider unchanged. "
    text = (sentence * (kb * KB // len(sentence) + 1))[: kb * KB - 200]
    return orjson.dumps(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": text}],
            "stream": True,
        }
    )


def system_filler_body() -> bytes:
    """A one-line question under a 115 KB system prompt of seeded prose (~1,500 lines), as
    bench/measure/bodies.py's `filler-115k`: the volatile rule judges every line of it."""
    system = Prose(random.Random(16), "support").text(FILLER_KB * 1000 // 4)
    question = [{"role": "user", "content": "What is the capital of France? One word."}]
    return orjson.dumps(
        {"model": "claude-haiku-4-5", "max_tokens": 200, "system": system, "messages": question}
    )


def _session(fixture: str, wire: WireFormat, path: str, prefix: str) -> list[Body]:
    """A recorded session's first call and its largest, each after the calls before it."""
    file = FIXTURES / f"{fixture}.jsonl"
    if not file.exists():
        return []
    calls: list[Call] = load(file).calls
    raws = [call.raw_body() for call in calls]
    late = max(range(len(raws)), key=lambda i: len(raws[i]))
    return [
        Body(f"{prefix}-first-turn", wire, path, raws[0]),
        Body(f"{prefix}-late-turn", wire, path, raws[late], tuple(raws[:late])),
    ]


def all_bodies() -> list[Body]:
    system = system_filler_body()
    return [
        Body("1kb", ANTHROPIC_MESSAGES, "/v1/messages", small_body()),
        Body("chat-1kb", OPENAI_CHAT, "/v1/chat/completions", small_chat_body()),
        Body("filler-115kb", ANTHROPIC_MESSAGES, "/v1/messages", filler_body()),
        # Sent again and again as cpu.py does: its system prompt's lines are in the memo.
        Body("system-115kb", ANTHROPIC_MESSAGES, "/v1/messages", system, (system,)),
        *_session("claude-long", ANTHROPIC_MESSAGES, "/v1/messages", "claude-code"),
        *_session("codex-projects", OPENAI_RESPONSES, "/v1/responses", "codex"),
    ]


# --------------------------------------------------------------------------- responses


async def _emulated(settings: Settings, body: Body, payload: bytes) -> bytes:
    app = create_emulator_app(settings)
    headers = {
        "content-type": "application/json",
        "x-api-key": "sk-ant-bench",
        "anthropic-version": "2023-06-01",
        "authorization": "Bearer sk-bench",
    }
    if body.wire.provider == "openai":
        del headers["x-api-key"], headers["anthropic-version"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.post(body.path, content=payload, headers=headers)
        response.raise_for_status()
        return response.content


def responses(settings: Settings, body: Body) -> tuple[list[bytes], bytes]:
    """(the stream as one chunk per event, as the emulator writes it; the JSON response)."""
    parsed = orjson.loads(body.raw)
    asked = body.wire.ask_usage({**parsed, "stream": True}) if body.wire.ask_usage else None
    streamed = asked[0] if asked is not None else {**parsed, "stream": True}
    stream = asyncio.run(_emulated(settings, body, orjson.dumps(streamed)))
    plain = asyncio.run(_emulated(settings, body, orjson.dumps({**parsed, "stream": False})))
    chunks = [event + b"\n\n" for event in stream.split(b"\n\n") if event]
    return chunks, plain
