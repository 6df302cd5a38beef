"""CPU per call of `gateway serve` and of the do-nothing proxy, side by side, on one body (or
one recorded session's bodies, sent in order request by request, cycling).

A quick check between full runs of bench/overhead.py: the emulator and wrk on core 0, the
proxy under test alone on core 1, 64 calls in flight (`--connections`) for a few seconds;
the process's user and system time per call from /proc, with the kernel's share and the
minor page faults per call (pages the allocator took fresh from the kernel) beside it.
CPU per call is the number to compare on a busy machine, where throughput is not.
`--env NAME=VALUE` sets a variable in both proxies' environment (a malloc tunable, say).
`--gateway-src DIR` also measures another tree's gateway package (as `baseline`), and
`--rounds N` measures the proxies in turn N times (A/B/A/B: one run's spread is ±15 %).
Run from the repository root:

    .venv/bin/python bench/cpu_vs_floor.py claude-code-late-turn
    .venv/bin/python bench/cpu_vs_floor.py filler --proxies gateway --stream --spy /tmp/g.raw

Bodies: those of bench/overhead.py's `--body` (filler is the 89-byte question). `--spy F`
records a py-spy profile of the gateway while it is measured (`pip install py-spy`; raw
format, one line a stack, for `py-spy`'s own tools or a flame graph).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from harness.load import run_wrk, wrk_script  # noqa: E402
from harness.process import cpu_times, minor_faults  # noqa: E402
from harness.proxies import Server, emulator_server, floor_server, gateway_server  # noqa: E402
from measure.bodies import body_lists, names, route  # noqa: E402

CONNECTIONS = 64


def proxy(
    kind: str, upstream: Server, env: dict[str, str], source: Path | None
) -> AbstractContextManager[Server]:
    if kind == "floor":
        return floor_server("httpx-aiohttp", upstream, env)
    if kind == "baseline":  # another tree's gateway package
        return gateway_server(upstream, env=env, name="baseline", source=source)
    return gateway_server(upstream, env=env)


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("body", choices=names())
    parse.add_argument("--proxies", default="floor,gateway", help="floor, gateway or both")
    parse.add_argument("--seconds", type=float, default=6.0)
    parse.add_argument("--stream", action="store_true", help="the streaming body")
    parse.add_argument("--spy", type=Path, help="a py-spy profile of the gateway, to this file")
    parse.add_argument("--connections", type=int, default=CONNECTIONS, help="calls in flight")
    parse.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the proxy's environment"
    )
    parse.add_argument(
        "--gateway-src", type=Path, help="another tree's gateway package, run as `baseline`"
    )
    parse.add_argument(
        "--rounds", type=int, default=1, help="the proxies measured in turn, this many times"
    )
    args = parse.parse_args()
    env = dict(pair.split("=", 1) for pair in args.env)
    kinds = args.proxies.split(",") + (["baseline"] if args.gateway_src is not None else [])
    plain, stream = body_lists(args.body)
    bodies = stream if args.stream else plain
    with emulator_server() as upstream, tempfile.TemporaryDirectory() as tmp:
        for kind in kinds * args.rounds:
            with proxy(kind, upstream, env, args.gateway_src) as server:
                script = wrk_script(server, bodies, path=route(args.body))
                run_wrk(server, script, args.connections, 2, Path(tmp))  # warm-up
                spy = None
                if args.spy is not None and kind == "gateway":
                    beside = Path(sys.executable).parent / "py-spy"  # pip installs it into the venv
                    found = str(beside) if beside.exists() else shutil.which("py-spy")
                    command = [found or "py-spy", "record", "-p"]
                    command += [str(server.proc.pid), "-d", str(int(args.seconds)), "-r", "200"]
                    command += ["-f", "raw", "-o", str(args.spy), "--nonblocking"]
                    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)
                user_before, system_before = cpu_times(server.proc.pid)
                faults_before = minor_faults(server.proc.pid)
                result = run_wrk(server, script, args.connections, args.seconds, Path(tmp))
                user_after, system_after = cpu_times(server.proc.pid)
                faults = minor_faults(server.proc.pid) - faults_before
                system = system_after - system_before
                spent = user_after - user_before + system
                if spy is not None:
                    spy.wait()
                calls = result.requests or float("nan")
                per_call = spent / calls * 1000
                print(
                    f"{args.body} {'stream' if args.stream else 'json'} {kind}: "
                    f"{result.rps:,.0f} req/s, CPU per call {per_call:.3f} ms "
                    f"({system / spent:.0%} system, {faults / calls:.1f} page faults), "
                    f"errors {result.errors}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
