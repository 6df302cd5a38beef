"""Instructions per call of `gateway serve` and of the do-nothing proxy, on one body (or one
recorded session's bodies, turn i on call i, cycling).

CPU time per call moves ±15 % between runs on a shared 2-core machine; a count of the served
process's user-space instructions does not (±1 %), so a 2 % change can be seen while other
work runs beside it. The proxy runs under valgrind's callgrind with instrumentation off;
after a warm-up the count is switched on (`callgrind_control -i on`) for `--calls` calls sent
one at a time (or `--concurrency` at once) over kept-alive connections, then dumped. The
kernel's work (sockets, wakes) is not counted. Needs `valgrind` (Debian). Run from the
repository root:

    .venv/bin/python bench/instructions.py filler
    .venv/bin/python bench/instructions.py claude-code-late-turn --proxies gateway --stream

Bodies: those of bench/overhead.py's `--body`; a session (claude-code-session, codex-session)
sends its turns in order on the warm-up and again from the first on the counted calls.
`--conversations` sends a session's turns as new conversations instead (each connection
its own, each turn after the answer to the one before; no two share a text of their items),
so what a turn adds is new to the gateway, as in a real conversation; cycling one session's
turns finds each turn's new texts learned from the pass before. `--gateway-src DIR` runs
another tree's gateway package (for example `git archive REV gateway
| tar -x -C DIR`) as the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from harness.ports import HOST, free_port  # noqa: E402
from harness.proxies import REPO, Server, emulator_server, request_headers, serving  # noqa: E402
from harness.servers import RELAY_SETTINGS, gateway_command  # noqa: E402
from measure.bodies import body_lists, conversation_variant, names, route  # noqa: E402
from measure.callgrind import block_moves_in, events  # noqa: E402

WARM_UP_CALLS = 60


# With --cache-sim: the simulated last level is one core's 4 MB L2 (this machine's), not
# the shared L3 valgrind would take, so a miss there is a trip past the core's own caches.
CACHE_SIM = ["--cache-sim=yes", "--LL=4194304,16,64"]


def callgrind(command: Sequence[str], out: Path, cache_sim: bool = False) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        *(CACHE_SIM if cache_sim else []),
        f"--callgrind-out-file={out}",
        *command,
    ]


@contextmanager
def proxy(
    kind: str, upstream: Server, out: Path, source: Path | None, cache_sim: bool = False
) -> Iterator[Server]:
    port = free_port()
    if kind == "floor":
        command = [sys.executable, str(REPO / "bench" / "passthrough.py")]
        command += ["--client", "httpx-aiohttp", "--port", str(port)]
        command += ["--upstream", upstream.base_url]
        env: dict[str, str] = {}
    else:
        command, env = gateway_command("serve", source=source)
        env |= {
            **RELAY_SETTINGS,
            "GATEWAY_SERVER__PORT": str(port),
            "GATEWAY_SERVER__WORKERS": "1",
            "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream.base_url,
            "GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream.base_url,
        }
    with serving(
        kind, callgrind(command, out, cache_sim), port, env, timeout_s=600, cwd=source or REPO
    ) as s:
        yield s


class Conversations:
    """Each connection replays the session as conversations of its own, one after another,
    each turn sent once the one before it is answered: variant k of the turns
    (conversation_variant), k counted across connections, so no two conversations share a
    text of their items, as two users' do not."""

    def __init__(self, bodies: Sequence[bytes]) -> None:
        self.bodies = bodies
        self.tags = itertools.count(1)

    def turns(self) -> Iterator[bytes]:
        while True:
            yield from conversation_variant(self.bodies, next(self.tags))


def send(
    server: Server,
    path: str,
    bodies: Sequence[bytes],
    calls: int,
    concurrency: int,
    conversations: Conversations | None = None,
) -> None:
    """`calls` POSTs over `concurrency` connections; call i (counted across them) sends
    bodies[i % len(bodies)], so a session's turns go in order, cycling; with
    `conversations`, each connection sends its own conversations' turns in order."""
    headers = dict(request_headers(server.api_key, path))
    failures: list[str] = []
    shared = itertools.cycle(bodies)  # next() under the GIL: each call takes the next turn

    def worker(count: int) -> None:
        connection = http.client.HTTPConnection(HOST, server.port, timeout=600)
        turns = shared if conversations is None else conversations.turns()
        for _ in range(count):
            connection.request("POST", path, next(turns), headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(str(response.status))
        connection.close()

    threads = [
        threading.Thread(target=worker, args=(calls // concurrency,)) for _ in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{server.name}: {len(failures)} calls failed: {failures[:3]}")


def control(server: Server, *flags: str) -> None:
    subprocess.run(
        ["callgrind_control", *flags, str(server.proc.pid)], check=True, capture_output=True
    )


def misses(counted: dict[str, int], calls: int) -> str:
    """Per call (K): data reads and writes, instruction fetches missing L1, data reads and
    writes missing L1 and missing L2."""
    if "D1mr" not in counted:
        return ""
    shown = ("Dr", "Dw", "I1mr", "D1mr", "D1mw", "DLmr", "DLmw")
    return "; per call (K): " + ", ".join(f"{e} {counted[e] / calls / 1e3:.1f}" for e in shown)


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("body", choices=names())
    parse.add_argument("--proxies", default="floor,gateway", help="floor, gateway or both")
    parse.add_argument("--calls", type=int, default=200)
    parse.add_argument("--concurrency", type=int, default=1)
    parse.add_argument("--stream", action="store_true", help="the streaming body")
    parse.add_argument("--gateway-src", type=Path, help="another tree's gateway package")
    parse.add_argument("--keep", type=Path, help="a directory to copy the dumps to")
    parse.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate the caches: data reads, writes and L1/L2 misses per call (slower)",
    )
    parse.add_argument(
        "--conversations",
        action="store_true",
        help="a session's turns as new conversations, each connection its own, in order",
    )
    args = parse.parse_args()
    plain, stream = body_lists(args.body)
    bodies = stream if args.stream else plain
    path = route(args.body)
    kinds = args.proxies.split(",")
    if args.gateway_src is not None:
        kinds.append("baseline")
    with emulator_server() as upstream, tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            out = Path(tmp) / f"{kind}.out"
            source = args.gateway_src if kind == "baseline" else None
            named = "floor" if kind == "floor" else "gateway"
            with proxy(named, upstream, out, source, args.cache_sim) as server:
                talks = Conversations(bodies) if args.conversations else None
                send(server, path, bodies, WARM_UP_CALLS, args.concurrency, talks)
                control(server, "-i", "on")
                started = time.monotonic()
                send(server, path, bodies, args.calls, args.concurrency, talks)
                control(server, "-d")
                dumps = sorted(Path(tmp).glob(f"{kind}.out*"), key=lambda p: p.stat().st_mtime)
                counted = events(dumps[-1])
                count, moves = counted["Ir"], block_moves_in(dumps[-1])
                if args.keep is not None:  # for callgrind_annotate: C functions, by cost
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(dumps[-1], args.keep / f"{kind}.out")
                took = time.monotonic() - started
            print(
                f"{args.body} {'stream' if args.stream else 'json'} {kind}: "
                f"{count / args.calls / 1e6:.3f} M instructions per call "
                f"({args.calls} calls, c{args.concurrency}, {took:.0f} s"
                f"{', new conversations' if args.conversations else ''}); "
                f"{moves / args.calls / 1e6:.3f} M of them block copies and fills, "
                f"{(count - moves) / args.calls / 1e6:.3f} M the rest"
                f"{misses(counted, args.calls)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
