"""The rewrite stages and the steps that measure the body, timed cold and on the same object:
µs per call.

    taskset -c 1 .venv/bin/python bench/same_object.py [--body NAME] [--json F]

Cold: each run on the body parsed anew, as bench/stages.py times it. Same: each run on the
very object an earlier accepted call sent (its observations learned), as prefix reuse hands
a stage the parts a body shares with an earlier call's parse: what the identity lookups
(rewrite/memo.py's `get_same`) save. Bodies and learned state as bench/stages.py has them.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from staging.bodies import Body, all_bodies, responses  # noqa: E402
from staging.parts import Parts  # noqa: E402

from gateway.catalog.tokens import BodyChars  # noqa: E402
from gateway.metering.ceiling import CostCeiling  # noqa: E402
from gateway.metering.pricing import Pricing  # noqa: E402
from gateway.rewrite.pipeline import STAGES, RewriteContext, Stage  # noqa: E402
from gateway.rewrite.request import LLMRequest  # noqa: E402
from gateway.settings import Settings  # noqa: E402

LEARN_TIMES = 6
STEPS = (
    "_whitespace",
    "_openai_whitespace",
    "_tool_json",
    "_volatile",
    "_openai_volatile",
    "_breakpoints",
    "_audit",
    "_openai_breakpoints",
    "_openai_audit",
    "_prompt_cache_key",
)


def median_us(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def measure_body(settings: Settings, body: Body, runs: int) -> dict[str, float]:
    parts = Parts(settings)
    _, plain = responses(settings, body)
    usage = body.wire.usage_from_body(plain).usage
    at = time.time() - 3600.0
    for raw in body.earlier:
        parts.call(body, raw, usage, at)
        at += 60.0
    for _ in range(LEARN_TIMES):
        parts.call(body, body.raw, usage, at, derived=False)
        at += 60.0
    stages = STAGES[body.wire.name]
    context = parts.context

    def through(count: int) -> LLMRequest:
        request = parts.request(body, orjson.loads(body.raw))
        for stage in stages[:count]:
            request = stage(request, context)
        return request

    row: dict[str, float] = {}
    for i, stage in enumerate(stages):
        if stage.__name__ not in STEPS:
            continue
        name = stage.__name__.lstrip("_").removeprefix("openai_")
        fresh = iter([through(i) for _ in range(runs + 1)])
        row[f"{name} cold"] = median_us(functools.partial(_next, stage, fresh, context), runs)
        same = through(i)
        parts.memory.learn(stage(same, context).observations)
        row[f"{name} same"] = median_us(functools.partial(stage, same, context), runs)
    final = through(len(stages))
    sent = orjson.dumps(final.body)
    ceiling = CostCeiling(Pricing.load(settings.pricing), parts.catalog, 32_768)
    models = [str(final.body.get("model"))]
    row["BodyChars"] = median_us(functools.partial(BodyChars.of_json, sent, final.body), runs)
    usd = functools.partial(ceiling.usd, body.wire.provider, models, final.body, sent)
    row["ceiling.usd"] = median_us(usd, runs)
    fp = final.fingerprint
    if fp is not None and usage is not None:
        owner = ("anthropic", "other", "none")
        now = time.time()
        record = functools.partial(parts.registry.record, fp, usage, now, now, 1024, owner)
        row["registry.record"] = median_us(record, runs)
    return row


def _next(stage: Stage, requests: Iterator[LLMRequest], context: RewriteContext) -> object:
    return stage(next(requests), context)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--body", action="append")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings()
    results: dict[str, dict[str, float]] = {}
    for body in all_bodies():
        if args.body and body.name not in args.body:
            continue
        row = measure_body(settings, body, args.runs)
        results[body.name] = row
        print(body.name, "  ".join(f"{k} {v:.0f}" for k, v in row.items()), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
