"""The canonical-text and tool stages on the very same parsed body again, µs per call.

bench/stages.py parses the body anew for each run (as a call without prefix reuse does);
here each stage is also timed on one parsed body, the first call's observations learned: the
path a body takes whose parse shares an earlier call's objects (rewrite/memo.py's
`get_same`). Run from the repository root:

    taskset -c 1 .venv/bin/python bench/same_objects.py [--runs 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from staging.bodies import Body, all_bodies  # noqa: E402
from staging.parts import Parts  # noqa: E402

from gateway.rewrite.pipeline import STAGES  # noqa: E402
from gateway.rewrite.request import LLMRequest  # noqa: E402
from gateway.settings import Settings  # noqa: E402

STAGE_NAMES = ("whitespace", "tool_json")
LEARN_TIMES = 6  # as bench/stages.py warms a body up


def median_us(prepare: Callable[[], Callable[[], object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        work = prepare()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def timed(settings: Settings, body: Body, runs: int) -> list[float]:
    """(cold, same) µs of each stage in STAGE_NAMES on `body`, warmed up as stages.py does."""
    parts = Parts(settings)
    for raw in body.earlier:
        parts.call(body, raw, None, 0.0)
    for _ in range(LEARN_TIMES):
        parts.call(body, body.raw, None, 0.0, derived=False)
    stages = STAGES[body.wire.name]
    names = [s.__name__.lstrip("_").removeprefix("openai_") for s in stages]
    context = parts.context

    def through(count: int) -> LLMRequest:
        request = parts.request(body, orjson.loads(body.raw))
        for stage in stages[:count]:
            request = stage(request, context)
        return request

    row = []
    for name in STAGE_NAMES:
        i = names.index(name)
        stage = stages[i]
        row.append(median_us(lambda s=stage, i=i: partial(s, through(i), context), runs))
        shared = through(i)  # one parsed body: the same objects each run
        parts.memory.learn(stage(shared, context).observations)
        row.append(median_us(lambda s=stage, r=shared: partial(s, r, context), runs))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args(argv)
    settings = Settings()
    heads = "".join(f"{n + ' ' + k:>18}" for n in STAGE_NAMES for k in ("cold", "same"))
    print(f"{'body':24}{heads}")
    for body in all_bodies():
        row = timed(settings, body, args.runs)
        print(f"{body.name:24}" + "".join(f"{us:18.1f}" for us in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
