"""What one model call costs the gateway, step by step, on real bodies: µs per call and per KB.

Run from the repository root (~15 s a round; numbers for the log, nothing asserted):

    .venv/bin/python bench/stages.py
    .venv/bin/python bench/stages.py --body claude-code-late-turn --json out.json
    .venv/bin/python bench/stages.py --compare bench/results/stages-redesign.json
    taskset -c 1 .venv/bin/python bench/stages.py --rounds 3 --sessions   # as stages-memo.txt
    .venv/bin/python bench/stages.py --no-memo     # every value derived anew (rewrite/memo.py)

`--sessions` also replays each recorded session turn by turn, the rewrite timed with the
memo and without it (staging/replay.py).

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
stage's output, from the body parsed anew for each run, so no text's hash is cached from the
run before: a memo keyed by texts pays here what it pays in a call), run until it has taken
~`--budget-ms` or `--max-runs` times, and reported as its median. Rows marked `·` are parts
of a step above, shown apart because they walk the body (the stage's time includes them).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from staging.bodies import KB, Body, all_bodies, responses  # noqa: E402
from staging.parts import TENANT, Parts  # noqa: E402
from staging.replay import Replay, replay, report  # noqa: E402
from staging.report import Results, Row, change_from, per_call, per_kb, table  # noqa: E402

from gateway.catalog.tokens import BodyChars  # noqa: E402
from gateway.metering.call_log import CallLog  # noqa: E402
from gateway.metering.calls import CallRecord  # noqa: E402
from gateway.metering.ceiling import CostCeiling  # noqa: E402
from gateway.metering.pricing import Pricing  # noqa: E402
from gateway.rewrite.fingerprint import conversation_of, family_of, fingerprint  # noqa: E402
from gateway.rewrite.openai_text import layers  # noqa: E402
from gateway.rewrite.pipeline import STAGES, rewrite  # noqa: E402
from gateway.rewrite.request import LLMRequest  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.wire.formats import ANTHROPIC_MESSAGES, OPENAI_RESPONSES  # noqa: E402
from gateway.wire.usage import Usage  # noqa: E402

SESSIONS = (
    ("claude-long", ANTHROPIC_MESSAGES),
    ("claude-projects", ANTHROPIC_MESSAGES),
    ("codex-projects", OPENAI_RESPONSES),
)
LEARN_TIMES = 6  # past rewrite.learn_volatile_after (5): line statistics judge the body


# --------------------------------------------------------------------------- timing


Work = Callable[[], object]
# (name, part of a step above, a fresh input's work): each run times the work on an input
# made anew (a body parsed again, as every call's is), so no string's hash is cached from
# an earlier run and a memo keyed by a text pays what it would in a call.
Step = tuple[str, bool, Callable[[], Work]]


def measure(prepare: Callable[[], Work], budget_s: float, max_runs: int) -> tuple[float, int]:
    """Median µs of the work `prepare` makes (made anew, untimed, before each run), run until
    it has taken `budget_s` or `max_runs` times (at least 3)."""
    prepare()()  # once untimed: first-call caches
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (spent < budget_s and len(times) < max_runs):
        fn = prepare()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return statistics.median(times) * 1e6, len(times)


def same(fn: Work) -> Callable[[], Work]:
    """A step whose input need not be made anew (no text is hashed by it)."""
    return lambda: fn


def _name(stage: Callable[..., Any]) -> str:
    """One row per rule across wire formats: `_openai_whitespace` is `rewrite.whitespace`."""
    return "rewrite." + stage.__name__.lstrip("_").removeprefix("openai_")


def steps(parts: Parts, body: Body, chunks: list[bytes], plain: bytes) -> list[Step]:
    """(name, part of a step above, the work) for every per-call step, in the call's order."""
    wire = body.wire
    parsed = orjson.loads(body.raw)
    context = parts.context

    def through(count: int) -> LLMRequest:
        """The body parsed as a call's is (reusing the kept turn: the objects it repeats are
        the earlier parse's), through the first `count` stages."""
        request = parts.request(body, parts.read(body.raw).parsed)
        for stage in STAGES[wire.name][:count]:
            request = stage(request, context)
        return request

    def stage_at(i: int) -> Callable[[], Work]:
        return lambda: functools.partial(STAGES[wire.name][i], through(i), context)

    def on_final(work: Callable[[LLMRequest, dict[str, Any]], object]) -> Callable[[], Work]:
        def prepare() -> Work:
            done = through(len(STAGES[wire.name]))
            shaped = layers(done.body) if wire.provider == "openai" else done.body
            return functools.partial(work, done, shaped)

        return prepare

    out: list[Step] = [
        (
            "parse (reusing the kept turn)",
            False,
            lambda: functools.partial(parts.read, bytes(bytearray(body.raw)), False),
        ),
        ("· parse, cold (orjson.loads)", True, same(lambda: orjson.loads(body.raw))),
    ]
    out += [(_name(stage), False, stage_at(i)) for i, stage in enumerate(STAGES[wire.name])]
    request = through(len(STAGES[wire.name]))
    final = request.body
    changed = request.changed
    at = next(i for i, step in enumerate(out) if step[0] == "rewrite.audit") + 1
    out[at:at] = [
        ("· fingerprint", True, on_final(lambda r, b: fingerprint(
            b, r.stable_system_blocks, 4.0, TENANT, r.prompt_tools))),
        ("· family_of (+ breakpoints)", True, on_final(lambda r, b: family_of(
            b, r.stable_system_blocks, TENANT, r.prompt_tools))),
        ("· conversation_of (+ bre..)", True, on_final(
            lambda r, b: conversation_of(b, TENANT))),
    ]  # fmt: skip
    # Serialized only when a stage changed the body (relay.py), or for a gateway key's call:
    # spliced from the bytes of the parts it shares with the parse (wire/splice.py).
    reading = parts.read(body.raw)
    spliced = rewrite(parts.request(body, reading.parsed), context, STAGES[wire.name]).body
    out.append(("serialize" + ("" if changed else " (unchanged: skipped)"), not changed,
                same(lambda: reading.dumps(spliced))))  # fmt: skip
    out.append(("· serialize, orjson.dumps", True, same(lambda: orjson.dumps(final))))
    # A gateway key's call: the most it can cost, counted from the body as sent (ceiling.py).
    sent = orjson.dumps(final)
    ceiling = CostCeiling(Pricing.load(parts.settings.pricing), parts.catalog, 32_768)
    model = str(final.get("model"))
    out.append(
        ("tokens.BodyChars (keys only)", False, same(lambda: BodyChars.of_json(sent, final)))
    )
    out.append(("ceiling.usd (keys only)", False,
                same(lambda: ceiling.usd(wire.provider, [model], final, sent))))  # fmt: skip

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
    model = record.model_used or record.model_requested
    owner = parts.meter.labels_of(record.provider, model, record.step)

    def remember() -> object:
        assert fp is not None
        return parts.registry.record(fp, usage, time.time(), time.time(), 1024, owner)

    new_filter = wire.new_usage_filter

    def strip() -> object:
        assert new_filter is not None
        usage_filter = new_filter(8 * KB * KB)
        return [usage_filter.feed(chunk) for chunk in chunks], usage_filter.flush()

    if new_filter is not None:
        out.append(("usage filter (chat stream)", False, same(strip)))
    out += [
        ("lessons (after a 2xx)", False, same(lambda: parts.memory.learn(request.observations))),
        ("registry.record", False, same(remember)),
        (f"tap.stream ({len(chunks)} events)", False, same(tap)),
        ("usage.json body", False, same(lambda: wire.usage_from_body(plain))),
        ("meter.on_call_complete", False, same(lambda: parts.meter.on_call_complete(record))),
        ("call_log.line", False, same(lambda: CallLog._line(record, metered))),
    ]
    return out


def run_body(
    settings: Settings, body: Body, budget_s: float, max_runs: int, memo: bool = True
) -> tuple[list[Row], dict[str, Any]]:
    parts = Parts(settings, memo)
    chunks, plain = responses(settings, body)
    usage = body.wire.usage_from_body(plain).usage
    at = time.time() - 3600.0
    for raw in body.earlier:
        parts.call(body, raw, usage, at)
        at += 60.0
    for _ in range(LEARN_TIMES):
        parts.call(body, body.raw, usage, at, derived=False)
        at += 60.0
    rows = []
    for name, part_of, prepare in steps(parts, body, chunks, plain):
        median_us, runs = measure(prepare, budget_s, max_runs)
        rows.append(Row(name, part_of, median_us, runs))
    facts = {"bytes": len(body.raw), "wire": body.wire.name, "events": len(chunks)}
    return rows, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--body", action="append", help="only this body (repeatable)")
    parser.add_argument("--budget-ms", type=float, default=40.0, help="time per step per body")
    parser.add_argument("--max-runs", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--compare", type=Path, help="a --json file of an earlier run")
    parser.add_argument(
        "--no-memo", action="store_true", help="every call derives all anew (rewrite/memo.py)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="each step's fastest median kept")
    parser.add_argument(
        "--sessions", action="store_true", help="also replay the recorded sessions (replay.py)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    memo = not args.no_memo
    bodies = [b for b in all_bodies() if not args.body or b.name in args.body]
    if not bodies:
        print(f"--body: none of {[b.name for b in all_bodies()]}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results: Results = {}
    for _ in range(args.rounds):  # bodies interleaved: a burst of load spoils one round
        for b in bodies:
            rows, facts = run_body(settings, b, args.budget_ms / 1000, args.max_runs, memo)
            kept = results.get(b.name, (rows, facts))[0]
            results[b.name] = (
                [min(r, k, key=lambda x: x.median_us) for r, k in zip(rows, kept, strict=True)],
                facts,
            )
    print("Per-call gateway work, µs per call (median; · = part of the step above it)\n")
    print(table(results, per_call, 0))
    print("\nµs per KB of request body\n")
    print(table(results, per_kb(results), 2))
    if args.compare is not None:
        print(f"\nµs per call, change from {args.compare}\n")
        print(table(results, change_from(json.loads(args.compare.read_text())), 0, "+"))
    replays: list[Replay] = []
    if args.sessions:
        found = [replay(settings, name, wire, args.rounds) for name, wire in SESSIONS]
        replays = [r for r in found if r is not None]
        print("\nRecorded sessions replayed: rewrite µs per turn, with the memo and without;")
        print("parse µs per turn, reusing the kept turn (with the memo) and whole\n")
        print(report(replays))
    notes = [
        f"{n}: {facts['wire']}, {facts['bytes']:,} bytes, {facts['events']} response events"
        for n, (_, facts) in results.items()
    ]
    print("\n" + "\n".join(notes))
    print(f"\n{time.perf_counter() - started:.1f} s, Python {sys.version.split()[0]}, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    if args.json is not None:
        data: dict[str, Any] = {
            n: {**facts, "steps": {r.step: round(r.median_us, 1) for r in rows}}
            for n, (rows, facts) in results.items()
        }
        if replays:
            data["sessions"] = {r.session: dataclasses.asdict(r) for r in replays}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
