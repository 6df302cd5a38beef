"""The server's CPU per call at c=1 and c=64 on one body, and the cyclic collector's share.

Run from the repository root:

    .venv/bin/python bench/concurrency.py                      # 340 KB Claude Code late turn
    .venv/bin/python bench/concurrency.py --ref main --floor   # and main's gateway, the floor

`gateway serve` (one worker, aiohttp upstream transport) on core 1, the emulator and wrk on
core 0, as bench/overhead.py runs them. Each cell: a one-second warm-up, then `--seconds` of
wrk at that concurrency, `--repeat` times, the lowest CPU per call kept (the machine is
shared). CPU is the server process's user and system time from /proc. For the gateways,
the collector's passes and their CPU time per call: a sitecustomize module put on the
server's PYTHONPATH registers a `gc.callbacks` clock and writes its totals to a file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

from harness.checkout import gateway_tree  # noqa: E402
from harness.load import run_wrk, wrk_script  # noqa: E402
from harness.proxies import Server, emulator_server, floor_server, gateway_server  # noqa: E402
from measure.bodies import body_pair, route  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
GC_CLOCK = """
import gc, json, os, threading, time
_out, _totals, _began = os.environ["GC_CLOCK_FILE"], [0, 0, 0, 0.0, 0.0, 0.0], [0.0]
def _clock(phase, info):
    if phase == "start":
        _began[0] = time.process_time()
    else:
        _totals[info["generation"]] += 1
        _totals[3 + info["generation"]] += time.process_time() - _began[0]
def _write():
    while True:
        time.sleep(0.1)
        with open(_out + ".tmp", "w") as f:
            json.dump(_totals, f)
        os.replace(_out + ".tmp", _out)
gc.callbacks.append(_clock)
threading.Thread(target=_write, daemon=True).start()
"""


def user_system(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def gc_totals(path: Path | None) -> list[float]:
    if path is None or not path.exists():
        return [0.0] * 6
    time.sleep(0.2)  # the writer's next tick
    totals: list[float] = json.loads(path.read_text())
    return totals


def cells(
    server: Server, clock: Path | None, plain: bytes, stream: bytes, args: argparse.Namespace
) -> Iterator[str]:
    """One line per (mode, concurrency); `clock` is the server's collector totals file."""
    workdir = Path(tempfile.mkdtemp())
    for mode, payload in (("json", plain), ("stream", stream)):
        script = wrk_script(server, [payload], path=route(args.body))
        for concurrency in args.concurrency:
            best: tuple[float, str] | None = None
            for _ in range(args.repeat):
                run_wrk(server, script, concurrency, 1, workdir)
                gc_before, (user0, sys0) = gc_totals(clock), user_system(server.proc.pid)
                result = run_wrk(server, script, concurrency, args.seconds, workdir)
                user1, sys1 = user_system(server.proc.pid)
                gc_after = gc_totals(clock)
                n = max(result.requests, 1)
                cpu = (user1 - user0 + sys1 - sys0) * 1e3 / n
                line = (
                    f"{server.name:22} {mode:6} c={concurrency:<3} CPU {cpu:6.2f} ms/call"
                    f" ({(user1 - user0) * 1e3 / n:.2f} user), {result.rps:5.0f} calls/s,"
                    f" {result.errors} errors"
                )
                if clock is not None:
                    passes = "/".join(f"{(gc_after[g] - gc_before[g]) / n:.3f}" for g in range(3))
                    spent = "/".join(
                        f"{(gc_after[3 + g] - gc_before[3 + g]) * 1e3 / n:.2f}" for g in range(3)
                    )
                    line += f"; gc passes/call gen0/1/2 {passes}, gc ms/call {spent}"
                if best is None or cpu < best[0]:
                    best = (cpu, line)
            assert best is not None
            yield best[1]


@contextlib.contextmanager
def clocked_gateway(
    emulator: Server, name: str, source: Path | None, folder: Path
) -> Iterator[tuple[Server, Path | None]]:
    """`gateway serve` (this tree's, or the one under `source`) with the collector clock."""
    site = folder / name
    site.mkdir()
    (site / "sitecustomize.py").write_text(GC_CLOCK)
    path = f"{source}:{site}" if source is not None else str(site)
    env = {"PYTHONPATH": path, "GC_CLOCK_FILE": str(site / "gc.json")}
    with gateway_server(emulator, "aiohttp", env, name=name, source=source) as server:
        yield server, site / "gc.json"


@contextlib.contextmanager
def floor(emulator: Server) -> Iterator[tuple[Server, Path | None]]:
    with floor_server("httpx-aiohttp", emulator) as server:
        yield server, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--body", default="claude-code-late-turn", help="bench/measure/bodies")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--ref", help="also measure the gateway of this commit")
    parser.add_argument("--floor", action="store_true", help="also the httpx-aiohttp floor")
    args = parser.parse_args(argv)
    plain, stream = body_pair(args.body)
    print(f"body {args.body}, {len(plain):,} bytes; best of {args.repeat} × {args.seconds:g} s")
    with (
        tempfile.TemporaryDirectory() as folder,
        contextlib.ExitStack() as stack,
        emulator_server() as emulator,
    ):
        servers: list[AbstractContextManager[tuple[Server, Path | None]]] = []
        if args.floor:
            servers.append(floor(emulator))
        if args.ref:
            source = stack.enter_context(gateway_tree(args.ref))
            servers.append(clocked_gateway(emulator, f"gateway@{args.ref}", source, Path(folder)))
        servers.append(clocked_gateway(emulator, "gateway", None, Path(folder)))
        for serving in servers:
            with serving as (server, clock):
                for line in cells(server, clock, plain, stream, args):
                    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
