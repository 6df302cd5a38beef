"""The gateway's overhead: direct to the emulator vs through `gateway serve`, on pinned cores.

Run from the repository root (one run produces the whole table):

    .venv/bin/python bench/overhead.py            # full: 10 s per cell, 100,000-request soak
    .venv/bin/python bench/overhead.py --quick    # 2 s per cell, 5,000-request soak
    .venv/bin/python bench/overhead.py --setup-litellm   # once: LiteLLM in .cache/litellm-venv
    .venv/bin/python bench/overhead.py --body claude-code-late-turn   # a recorded 340 KB body
    .venv/bin/python bench/overhead.py --body all --summary --ref main   # proxies × bodies,
                                                  # this tree's gateway beside main's

Layout: the gateway worker alone on core 1; the emulator (`--latency none`) and the load
generators on core 0. The floors (bench/passthrough.py, a do-nothing raw-ASGI passthrough on
the gateway's stack) run on core 1 exactly like the gateway: the gateway's own work is the
difference. Throughput and latency percentiles come from `wrk` (C, one thread, closed loop, Lua
script for the POST body); time to first byte from a small raw-socket asyncio client (`Probe`)
that timestamps the status line and the first `content_block_delta`. Proxy CPU is read from
/proc/<pid>/stat around each cell. The servers and load generators are bench/harness/'s, the
cells and the report bench/measure/'s. See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from harness.checkout import gateway_tree, short_commit
from harness.litellm import litellm_server, litellm_version, setup_litellm
from harness.machine import machine
from harness.progress import log
from harness.proxies import (
    LOAD_CORE,
    REPO,
    Server,
    emulator_server,
    floor_server,
    gateway_key,
    gateway_server,
)
from harness.redis_server import redis_server
from measure import bodies
from measure.cells import Report
from measure.report import REPLY_WORDS, ceiling_notes, markdown, quiet_notes
from measure.runner import Bench

RESULTS = REPO / "bench" / "results"
PACKAGES = (
    "uvicorn", "uvloop", "httptools", "fastapi", "starlette", "httpx",
    "httpcore", "httpx-aiohttp", "aiohttp", "orjson",
)  # fmt: skip


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("--quick", action="store_true", help="2 s cells, 5,000-request soak")
    parse.add_argument("--seconds", type=float, help="measured seconds per cell")
    parse.add_argument("--soak", type=int, help="soak length in requests (0: none)")
    parse.add_argument(
        "--transports", default="aiohttp,httpcore", help="gateway upstream transports to run"
    )
    parse.add_argument(
        "--floors",
        default="httpx-aiohttp,aiohttp",
        help="passthrough floors to run (bench/passthrough.py clients; '' for none)",
    )
    parse.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even if there")
    parse.add_argument(
        "--state",
        action="store_true",
        help="only the gateway-key runs (budget + rate limit on every call): state in memory"
        " vs Redis; results in bench/results/overhead-state.*",
    )
    parse.add_argument("--setup-litellm", action="store_true", help="install LiteLLM, exit")
    parse.add_argument(
        "--body",
        default=bodies.FILLER,
        help="the request body: 'filler' (a one-line question, ~100 bytes, the default),"
        " 'filler-115k' (the same under 115 KB of seeded prose) or a recorded one,"
        " claude-code-first-turn (~116 KB), claude-code-late-turn (300 KB+), codex-first-turn"
        " or codex-late-turn (~42 KB, on the Responses API), or a recorded session replayed"
        " turn by turn in order, claude-code-session (18 turns) or codex-session (10); several"
        " comma-separated, or 'all'. Results in bench/results/overhead-<body>.* (several:"
        " overhead-bodies.*)",
    )
    parse.add_argument(
        "--summary",
        action="store_true",
        help="only the cells of the per-body table (c=1 and c=64 JSON, c=64 stream), no"
        " probes, no soak unless --soak is given; results in bench/results/overhead-bodies.*",
    )
    parse.add_argument(
        "--ref",
        metavar="GIT_REV",
        help="also measure the gateway of this commit (git archive into a temporary"
        " directory, run with this environment's packages), beside this tree's",
    )
    parse.add_argument(
        "--gateway-src",
        type=Path,
        metavar="PATH",
        help="also measure the gateway package under PATH (PATH/gateway), beside this tree's",
    )
    parse.add_argument(
        "--no-quiet",
        action="store_true",
        help="run each cell once without waiting for a quiet machine (a smoke run: the"
        " numbers are not comparable)",
    )
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.setup_litellm:
        return setup_litellm()
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        log("needs 2 cores and taskset (util-linux) to pin gateway and load apart")
        return 2
    if shutil.which("wrk") is None:
        log("needs wrk: apt-get install -y wrk")
        return 2
    names = bodies.SUMMARY_BODIES if args.body == "all" else args.body.split(",")
    if unknown := [name for name in names if name not in bodies.names()]:
        log(f"--body: {unknown} not in {bodies.names()}")
        return 2
    try:
        ref = short_commit(args.ref) if args.ref else None
    except ValueError as error:
        log(f"--ref {args.ref}: {error}")
        return 2
    if args.gateway_src and not (args.gateway_src / "gateway" / "__main__.py").exists():
        log(f"--gateway-src: no gateway package under {args.gateway_src}")
        return 2
    labels = [label for label in (ref, args.gateway_src and str(args.gateway_src)) if label]
    pairs = {name: bodies.body_lists(name) for name in names}
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    soak_default = 0 if args.summary else 5_000 if args.quick else 100_000
    soak_requests = args.soak if args.soak is not None else soak_default
    os.sched_setaffinity(0, {LOAD_CORE})  # this process runs the probe: core 0 with the load
    command = " ".join(
        [".venv/bin/python bench/overhead.py", *(argv if argv is not None else sys.argv[1:])]
    )
    warmup = 1.0 if seconds < 4 else 2.0
    environment = environ(labels)
    report = Report(
        args={"seconds": seconds, "warmup": warmup, "soak": soak_requests, "body": args.body},
        environment=environment,
        body_bytes={n: bodies.sizes(pair) for n, pair in pairs.items()},
    )
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp, ExitStack() as trees:
        workdir = Path(tmp)
        sources = []  # (label, a tree holding another gateway package)
        if ref:
            sources.append((ref, trees.enter_context(gateway_tree(ref))))
        if args.gateway_src:
            sources.append((str(args.gateway_src), args.gateway_src.resolve()))
        env = {"GATEWAY_EMULATOR__REPLY_WORDS": str(REPLY_WORDS)}
        with emulator_server(env=env) as emulator:
            quiet = not args.no_quiet
            bench = Bench(emulator, seconds, warmup, workdir, report, quiet, args.summary)
            run = Run(bench, pairs)
            run.measure("direct", emulator, None)
            if args.state:
                measure_state(run, emulator, args.transports.split(",")[0], workdir)
            else:
                run.everything(args, sources, soak_requests)
    report.notes += ceiling_notes(report) + quiet_notes(report)
    text = markdown(report, command)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "overhead-state" if args.state else "overhead"
    if len(names) > 1 or args.summary:  # the per-body table; the full reports stay
        name += "-bodies"
    elif names[0] != bodies.FILLER:
        name += f"-{names[0]}"
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
    return 0


class Run:
    """One path at a time (started, measured on every body, stopped)."""

    def __init__(self, bench: Bench, pairs: dict[str, bodies.Pair]) -> None:
        self.bench = bench
        self.pairs = pairs

    def measure(self, path: str, server: Server, proxy: Server | None) -> None:
        for body, pair in self.pairs.items():
            self.bench.measure(path, server, proxy, body, pair)

    def everything(
        self, args: argparse.Namespace, sources: list[tuple[str, Path]], soak_requests: int
    ) -> None:
        emulator, report = self.bench.emulator, self.bench.report
        for client in [f for f in args.floors.split(",") if f]:
            with floor_server(client, emulator) as floor:
                self.measure(f"floor-{client}", floor, floor)
        transports = [t for t in args.transports.split(",") if t]
        for label, source in sources:
            for transport in transports:
                with gateway_server(emulator, transport, source=source) as gateway:
                    self.measure(f"gateway-{transport}@{label}", gateway, gateway)
        for transport in transports:
            with gateway_server(emulator, transport) as gateway:
                self.measure(f"gateway-{transport}", gateway, gateway)
                if soak_requests and transport == transports[0]:
                    log(f"  soak: {soak_requests:,} requests")
                    first = next(iter(self.pairs.values()))
                    report.soaks.append(self.bench.soak(transport, gateway, first, soak_requests))
        version = litellm_version()
        if args.no_litellm:
            return
        if version is None:
            report.notes.append(
                "LiteLLM row skipped: not installed (run with --setup-litellm first)."
            )
            return
        models = sorted({bodies.model(body) for pair in self.pairs.values() for body in pair[0]})
        try:
            with litellm_server(emulator, self.bench.workdir, models) as litellm:
                log(f"LiteLLM {version}")
                self.measure("litellm", litellm, litellm)
        except (RuntimeError, TimeoutError) as error:
            report.notes.append(f"LiteLLM row skipped: {error}")


def environ(others: list[str]) -> dict[str, str]:
    """The report's header; `others`: the other gateways measured beside this tree's."""
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    compared = {"compared with": ", ".join(others)} if others else {}
    return {
        **machine(PACKAGES),
        **compared,
        "kernel": os.uname().release,
        "wrk": (wrk.stdout or wrk.stderr).split("\n", 1)[0].strip(),
        "litellm": litellm_version() or "not installed",
    }


def measure_state(run: Run, emulator: Server, transport: str, workdir: Path) -> None:
    """The gateway passing provider keys through, then with a gateway key whose budget and
    rate limits are checked before and charged after every call: in memory, then on Redis."""
    with gateway_server(emulator, transport) as gateway:
        run.measure(f"gateway-{transport}", gateway, gateway)
    common = {
        "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": "sk-ant-bench-provider-key",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    memory = {**common, "GATEWAY_STATE__KEYS_FILE": str(workdir / "keys.json")}
    with redis_server(core=LOAD_CORE) as redis:
        shared = {**common, "GATEWAY_STATE__REDIS_URL": redis.url}
        for label, state in (("memory", memory), ("redis", shared)):
            key = gateway_key(state)
            name = f"gateway-{transport}-keys-{label}"
            with gateway_server(emulator, transport, state, name=name, api_key=key) as gateway:
                run.measure(name, gateway, gateway)


if __name__ == "__main__":
    raise SystemExit(main())
