"""What one model call costs the gateway, step by step, on real bodies: µs per call and per KB.

Run from the repository root (a few seconds; numbers for the log, nothing asserted):

    .venv/bin/python bench/stages.py
    .venv/bin/python bench/stages.py --body claude-code-late-turn --json out.json
    .venv/bin/python bench/stages.py --compare bench/results/stages-before.json

Every per-call step the gateway does on a model call, in its order: the JSON parse, each
rewrite stage (the wire format's stage tuple, rewrite/pipeline.py), re-serialization, the
fingerprint digests and token estimate some stages and the cost ceiling make, the usage tap
over the response (a stream, event per chunk, and a JSON body), metrics and the call-log
line. Bodies: a 1 KB question, a 115 KB filler body, and the recorded Claude Code and Codex
turns (tests/support/fixtures.py). Responses come from the emulator, in-process.

Stages see the learned state of a steady conversation: before a recorded body is timed, its
session's earlier calls and the body itself go through the pipeline, each learned from and
recorded as a successful call, so tool forms, line statistics and the prefix registry hold
what they would. Each step is timed alone on the input it gets in a call (the previous
stage's output), run until it has taken ~`--budget-ms` or `--max-runs` times, and reported as
its median. Rows marked `·` are parts of a step above, shown apart because they walk the
body (the stage's time includes them).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gateway.cache.bounded import LearnedState  # noqa: E402
from gateway.cache.lines import LineStats  # noqa: E402
from gateway.cache.registry import PrefixRegistry  # noqa: E402
from gateway.cache.tool_forms import ToolForms  # noqa: E402
from gateway.cascade.lifecycle import Lifecycle  # noqa: E402
from gateway.cascade.table import RoutingTable  # noqa: E402
from gateway.catalog import ModelCatalog  # noqa: E402
from gateway.catalog.tokens import BodyChars  # noqa: E402
from gateway.emulator.app import create_emulator_app  # noqa: E402
from gateway.metering.call_log import CallLog  # noqa: E402
from gateway.metering.calls import CallRecord, Meter  # noqa: E402
from gateway.metering.labels import LabelBounds  # noqa: E402
from gateway.metering.metrics import Metrics  # noqa: E402
from gateway.metering.pricing import Pricing  # noqa: E402
from gateway.rewrite.fingerprint import conversation_of, family_of, fingerprint  # noqa: E402
from gateway.rewrite.openai_text import layers  # noqa: E402
from gateway.rewrite.pipeline import RewriteContext  # noqa: E402
from gateway.rewrite.request import LLMRequest  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.wire.formats import (  # noqa: E402
    ANTHROPIC_MESSAGES,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    WireFormat,
)
from gateway.wire.usage import Usage  # noqa: E402
from tests.support.fixtures import FIXTURES, Call, load  # noqa: E402

TENANT = hashlib.blake2b(b"sk-ant-bench", digest_size=8).digest()
KB = 1024
FILLER_KB = 115
LEARN_TIMES = 6  # past rewrite.learn_volatile_after (5): line statistics judge the body


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
    return [
        Body("1kb", ANTHROPIC_MESSAGES, "/v1/messages", small_body()),
        Body("chat-1kb", OPENAI_CHAT, "/v1/chat/completions", small_chat_body()),
        Body("filler-115kb", ANTHROPIC_MESSAGES, "/v1/messages", filler_body()),
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


# --------------------------------------------------------------------------- the gateway's parts


class Parts:
    """The objects create_app builds for model calls, with the default settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        catalog = ModelCatalog.load(settings.models)
        self.catalog = catalog
        learned = LearnedState(
            settings.rewrite.learned_state_max_bytes,
            settings.rewrite.learned_state_per_tenant_max_bytes,
        )
        self.registry = PrefixRegistry(learned)
        routing = RoutingTable(settings.routing, catalog)
        self.context = RewriteContext(
            settings.rewrite,
            catalog,
            ToolForms(learned),
            LineStats(settings.rewrite.learn_volatile_after, state=learned),
            self.registry,
            routing,
            Lifecycle(catalog),
        )
        labels = LabelBounds(
            settings.metering.steps,
            (name for spec in catalog.models for name in (spec.id, *spec.aliases)),
        )
        self.meter = Meter(Metrics(CollectorRegistry()), labels, Pricing.load(settings.pricing))

    def request(self, body: Body, parsed: dict[str, Any]) -> LLMRequest:
        return LLMRequest(body.wire.provider, parsed, None, TENANT, True)

    def call(self, body: Body, raw: bytes, usage: Usage | None, at: float) -> None:
        """One accepted call: its lessons kept and the registry told of it, as the relay does."""
        request = self.request(body, orjson.loads(raw))
        for stage in body.wire.stages:
            request = stage(request, self.context)
        request.learn()
        if request.fingerprint is not None and usage is not None:
            owner = (body.wire.provider, "other", "none")
            self.registry.record(
                request.fingerprint, usage, at, at + 0.5, request.min_cacheable_tokens, owner
            )


# --------------------------------------------------------------------------- timing


Step = tuple[str, bool, Callable[[], object]]  # (name, part of a step above, the work)


@dataclass(frozen=True)
class Row:
    step: str
    part_of: bool  # a part of a step above, already in its time
    median_us: float
    runs: int


def measure(fn: Callable[[], object], budget_s: float, max_runs: int) -> tuple[float, int]:
    """Median µs of `fn`, run until it has taken `budget_s` or `max_runs` times (at least 3)."""
    fn()  # once untimed: first-call caches
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (spent < budget_s and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return statistics.median(times) * 1e6, len(times)


def _name(stage: Callable[..., Any]) -> str:
    """One row per rule across wire formats: `_openai_whitespace` is `rewrite.whitespace`."""
    return "rewrite." + stage.__name__.lstrip("_").removeprefix("openai_")


def steps(parts: Parts, body: Body, chunks: list[bytes], plain: bytes) -> list[Step]:
    """(name, part of a step above, the work) for every per-call step, in the call's order."""
    wire = body.wire
    parsed = orjson.loads(body.raw)
    out: list[Step] = [
        ("parse", False, lambda: orjson.loads(body.raw)),
    ]
    request = parts.request(body, parsed)
    context = parts.context
    for stage in wire.stages:
        given = request
        out.append((_name(stage), False, functools.partial(stage, given, context)))
        request = stage(request, context)
    final = request.body
    changed = request.changed
    stable = request.stable_system_blocks
    shaped = layers(final) if wire.provider == "openai" else final
    at = next(i for i, step in enumerate(out) if step[0] == "rewrite.audit") + 1
    out[at:at] = [
        ("· fingerprint", True, lambda: fingerprint(shaped, stable, 4.0, TENANT)),
        ("· family_of (+ breakpoints)", True, lambda: family_of(shaped, stable, TENANT)),
        ("· conversation_of (+ bre..)", True, lambda: conversation_of(shaped, TENANT)),
    ]
    # Serialized only when a stage changed the body (relay.py), or for a gateway key's call.
    out.append(("serialize" + ("" if changed else " (unchanged: skipped)"), not changed,
                lambda: orjson.dumps(final)))  # fmt: skip
    out.append(("tokens.BodyChars (keys only)", False, lambda: BodyChars.of(final)))

    def tap() -> object:
        watcher = wire.new_tap(8 * KB * KB)
        for chunk in chunks:
            watcher.feed(chunk)
        return watcher.usage

    reported = wire.usage_from_body(plain)
    usage = reported.usage or Usage()
    record = CallRecord(
        request_id="req_0123456789abcdef",
        provider=wire.provider,
        step=None,
        model_requested=str(parsed.get("model")),
        model_used=reported.model,
        status="200",
        duration_s=1.25,
        ttft_s=0.4,
        usage=usage,
        rewrites=tuple(r.rule for r in request.rewrites),
        findings=tuple(f.code for f in request.findings),
        overhead_s=0.002,
        started_at=time.time(),
    )
    metered = parts.meter.on_call_complete(record)
    fp = request.fingerprint
    owner = parts.meter.label_values(record)

    def remember() -> object:
        assert fp is not None
        return parts.registry.record(fp, usage, time.time(), time.time(), 1024, owner)

    new_filter = wire.new_usage_filter

    def strip() -> object:
        assert new_filter is not None
        usage_filter = new_filter(8 * KB * KB)
        return [usage_filter.feed(chunk) for chunk in chunks], usage_filter.flush()

    if new_filter is not None:
        out.append(("usage filter (chat stream)", False, strip))
    out += [
        ("lessons (after a 2xx)", False, request.learn),
        ("registry.record", False, remember),
        (f"tap.stream ({len(chunks)} events)", False, tap),
        ("usage.json body", False, lambda: wire.usage_from_body(plain)),
        ("meter.on_call_complete", False, lambda: parts.meter.on_call_complete(record)),
        ("call_log.line", False, lambda: CallLog._line(record, metered)),
    ]
    return out


def run_body(
    settings: Settings, body: Body, budget_s: float, max_runs: int
) -> tuple[list[Row], dict[str, Any]]:
    parts = Parts(settings)
    chunks, plain = responses(settings, body)
    usage = body.wire.usage_from_body(plain).usage
    at = time.time() - 3600.0
    for raw in (*body.earlier, *[body.raw] * LEARN_TIMES):
        parts.call(body, raw, usage, at)
        at += 60.0
    rows = []
    for name, part_of, fn in steps(parts, body, chunks, plain):
        median_us, runs = measure(fn, budget_s, max_runs)
        rows.append(Row(name, part_of, median_us, runs))
    facts = {"bytes": len(body.raw), "wire": body.wire.name, "events": len(chunks)}
    return rows, facts


# --------------------------------------------------------------------------- report


Results = dict[str, tuple[list[Row], dict[str, Any]]]
Value = Callable[[str, Row], float | None]  # (body, row) -> the cell, None: none


def table(results: Results, value: Value, digits: int, sign: str = "") -> str:
    """Steps down, bodies across; the total sums the steps that are not parts of another."""
    names = list(results)
    order: list[str] = []
    for steps_of, _ in results.values():
        at = 0  # a step only some bodies have goes after the step before it in theirs
        for step in steps_of:
            key = _key(step.step)
            if key in order:
                at = order.index(key) + 1
            else:
                order.insert(at, key)
                at += 1
    width = max(len(_short(n)) for n in names) + 2
    head = f"{'step':<30}" + "".join(f"{_short(n):>{width}}" for n in names)
    lines = [head, "-" * len(head)]
    totals = dict.fromkeys(names, 0.0)
    rows = {n: {_key(r.step): r for r in results[n][0]} for n in names}
    for key in order:
        cells = []
        for n in names:
            row = rows[n].get(key)
            cell = None if row is None else value(n, row)
            if row is None or cell is None:
                cells.append(f"{'-':>{width}}")
                continue
            if not row.part_of:
                totals[n] += cell
            cells.append(f"{cell:>{sign}{width}.{digits}f}")
        lines.append(f"{key:<30}" + "".join(cells))
    lines.append("-" * len(head))
    lines.append(f"{'total':<30}" + "".join(f"{totals[n]:>{sign}{width}.{digits}f}" for n in names))
    kb = "".join(f"{results[n][1]['bytes'] / KB:>{width}.0f}" for n in names)
    lines.append(f"{'body KB':<30}" + kb)
    return "\n".join(lines)


def per_call(_: str, row: Row) -> float:
    return row.median_us


def per_kb(results: Results) -> Value:
    return lambda name, row: row.median_us / (results[name][1]["bytes"] / KB)


def change_from(before: dict[str, Any]) -> Value:
    """µs more (+) or less (-) than a `--json` file of an earlier run says."""

    def change(name: str, row: Row) -> float | None:
        steps = {_key(step): us for step, us in before.get(name, {}).get("steps", {}).items()}
        was = steps.get(_key(row.step))
        return None if was is None else row.median_us - was

    return change


def _short(name: str) -> str:
    return name.replace("claude-code-", "cc-").replace("-turn", "")


def _key(step: str) -> str:
    """A step's row: the event count and skip note differ per body."""
    return step.split(" (")[0] if step.startswith(("tap.stream", "serialize")) else step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--body", action="append", help="only this body (repeatable)")
    parser.add_argument("--budget-ms", type=float, default=40.0, help="time per step per body")
    parser.add_argument("--max-runs", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--compare", type=Path, help="a --json file of an earlier run")
    args = parser.parse_args(argv)
    settings = Settings()
    bodies = [b for b in all_bodies() if not args.body or b.name in args.body]
    if not bodies:
        print(f"--body: none of {[b.name for b in all_bodies()]}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results: Results = {
        b.name: run_body(settings, b, args.budget_ms / 1000, args.max_runs) for b in bodies
    }
    print("Per-call gateway work, µs per call (median; · = part of the step above it)\n")
    print(table(results, per_call, 0))
    print("\nµs per KB of request body\n")
    print(table(results, per_kb(results), 2))
    if args.compare is not None:
        print(f"\nµs per call, change from {args.compare}\n")
        print(table(results, change_from(json.loads(args.compare.read_text())), 0, "+"))
    notes = [
        f"{n}: {facts['wire']}, {facts['bytes']:,} bytes, {facts['events']} response events"
        for n, (_, facts) in results.items()
    ]
    print("\n" + "\n".join(notes))
    print(f"\n{time.perf_counter() - started:.1f} s, Python {sys.version.split()[0]}, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    if args.json is not None:
        data = {
            n: {**facts, "steps": {r.step: round(r.median_us, 1) for r in rows}}
            for n, (rows, facts) in results.items()
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
