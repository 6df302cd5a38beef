"""The fault soak: N requests through the gateway to an emulator that injects 5% faults, with
clients that leave mid-stream and before the first byte.

Run from the repository root:

    .venv/bin/python bench/soak.py                    # 100,000 requests, about 5 minutes
    .venv/bin/python bench/soak.py --quick            # 5,000 requests
    .venv/bin/python bench/soak.py --requests 20000 --concurrency 64

`gateway emulate` (latency `realistic` with a fast profile, faults at seeded rates) and
`gateway serve` (one worker) run as subprocesses on free ports: the gateway alone on core 1,
the emulator and this load generator on core 0 (`taskset`), as bench/overhead.py does. An
aiohttp client sends a seeded mix of JSON and stream calls to POST /v1/messages and
classifies every outcome. The run passes when every request ended with a complete response,
a well-formed error or a departure its client chose; the emulator has no response open once
the clients are done; the gateway's RSS after warm-up stays within RSS_TOLERANCE_MB; and no
500 came from the gateway itself. The report goes to stdout and bench/results/soak.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from harness.progress import log
from harness.proxies import LOAD_CORE
from soaking.config import RESULTS, started
from soaking.report import markdown, verdicts
from soaking.run import soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, help="requests in all (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="5,000 requests")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "soak.md", help="the report (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        log("needs 2 cores and taskset (util-linux) to pin gateway and load apart")
        return 2
    requests = args.requests or (5_000 if args.quick else 100_000)
    os.sched_setaffinity(0, {LOAD_CORE})  # the load generator shares core 0 with the emulator
    command = " ".join(
        [".venv/bin/python bench/soak.py", *(argv if argv is not None else sys.argv[1:])]
    )
    with (
        tempfile.TemporaryDirectory(prefix="tollgate-soak-") as tmp,
        started(Path(tmp)) as (emulator, gateway),
    ):
        log(f"soak: {requests:,} requests at concurrency {args.concurrency}")
        run = asyncio.run(soak(gateway, emulator, requests, args.concurrency))
    text = markdown(run, command)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    return 0 if all(check.passed for check in verdicts(run)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
