"""What caching saves: naive agent workloads replayed direct vs through the gateway.

Run from the repository root (one run produces the whole table):

    taskset -c 0 .venv/bin/python bench/cost.py               # a full day, a few minutes
    taskset -c 0 .venv/bin/python bench/cost.py --scale 0.1   # the first 2.4 h, x10

Each workload in bench/workloads/ builds a day of calls written the naive way (timestamps and
names in the system prompt, unstable tool JSON, no cache_control, unpinned aliases). They are
replayed with the official `anthropic` SDK against `gateway emulate --latency simulated
--virtual-clock` (each call says what time it is in `x-emulator-now`; the response carries
the modelled time to first token in `x-emulator-ttft-ms`), once direct and once through
`gateway serve`. A third replay sends the workload's hand-tuned variant direct: the bar a
gateway in front of the naive app should reach. Every replay uses its own API key, so no
two share a cache. Calls of one replay go in virtual-time order (a conversation's next turn
after its previous one, as a real agent awaits the answer); calls at the same instant
(fan-out) go in parallel. Prices: the gateway's own (`gateway.metering.pricing`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
import warnings
from collections.abc import Sequence

from costing.config import DAY, RESULTS, ROUTES, WORKLOADS
from costing.replay import run_all
from costing.report import breakdown, commit, plot, rewrites, table, targets


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="replay this fraction of the day, extrapolate"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight at most")
    parser.add_argument("--day", default=DAY, help="the virtual day replayed (UTC)")
    parser.add_argument(
        "--coalesce-steps",
        default="extraction",
        help="the gateway's rewrite.coalesce_steps (comma-separated; the fan-out's step)",
    )
    parser.add_argument(
        "--realtime",
        default="fanout",
        help="workloads replayed on the wall clock at realistic latency (coalescing needs it)",
    )
    parser.add_argument(
        "--realtime-scale", type=float, default=0.1, help="--scale for the --realtime workloads"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    if not 0 < args.scale <= 1 or any(n not in WORKLOADS for n in names):
        parser.error(f"--scale in (0, 1]; --workloads from {', '.join(WORKLOADS)}")
    day_start = dt.datetime.fromisoformat(args.day).replace(tzinfo=dt.UTC).timestamp()
    # The SDK warns about claude-sonnet-4-5's end of life: the naive app uses it on purpose.
    warnings.filterwarnings("ignore", "The model .claude-sonnet-4-5", DeprecationWarning)

    started = time.monotonic()
    print(f"replaying {args.day} at scale {args.scale} ...", file=sys.stderr)
    steps = [s.strip() for s in args.coalesce_steps.split(",") if s.strip()]
    realtime = [n.strip() for n in args.realtime.split(",") if n.strip()]
    replays, metrics = asyncio.run(
        run_all(
            names,
            args.scale,
            args.seed,
            day_start,
            args.concurrency,
            steps,
            realtime,
            args.realtime_scale,
        )
    )
    order = {route: k for k, (route, _, _) in enumerate(ROUTES)}
    replays.sort(key=lambda r: (names.index(r.workload), order[r.route]))
    elapsed = time.monotonic() - started

    calls = sum(len(r.results) for r in replays)
    report = [
        "# Cost benchmark",
        "",
        f"Virtual day {args.day}, scale {args.scale} (first {args.scale * 24:.1f} h of the day"
        f" at full density, costs and tokens extrapolated ×{1 / args.scale:g}), seed"
        f" {args.seed}, gateway at {commit()}, {calls:,} calls in {elapsed:.0f} s."
        f" Replayed on the wall clock at realistic latency instead (scale"
        f" {args.realtime_scale}): {', '.join(realtime) or 'none'}.",
        "Routes: `direct` = the naive app straight to the emulator; `gateway` = the same naive"
        " app through `gateway serve`; `tuned` = the hand-tuned app straight to the emulator"
        " (the reference). Tokens per day; TTFT is the emulator's modelled time to first"
        " token; savings vs the naive direct cost. Hit ratio = cache_read / (input +"
        " cache_read + cache_write).",
        "",
        *table(replays),
        "",
        "## Targets",
        "",
        "```",
        *(t.line() for t in targets(replays)),
        "```",
        "",
        "## What the gateway rewrote (x-gateway-rewrites, calls carrying each rule)",
        "",
        *rewrites(replays),
        "",
        f"## The gateway's cache metrics after the replay (not extrapolated; coalesce_steps ="
        f" {steps})",
        "",
        "```",
        *(metrics or ["(none exported)"]),
        "```",
        "",
        "## Per position: mean tokens per call",
        "",
        *breakdown(replays),
        "",
    ]
    text = "\n".join(report)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "cost.md").write_text(text)
        print(plot(replays, RESULTS / "cost.png"), file=sys.stderr)


if __name__ == "__main__":
    main()
