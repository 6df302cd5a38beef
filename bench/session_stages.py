"""Each rewrite stage's µs per turn on a recorded session replayed turn by turn, in-process:
where a conversation's next turn costs the gateway more than a byte-identical resend.

Run from the repository root (a few seconds; numbers for the log, nothing asserted):

    taskset -c 1 .venv/bin/python bench/session_stages.py
    taskset -c 1 .venv/bin/python bench/session_stages.py --session codex-projects --passes 6

Each turn is parsed as the gateway parses it (reusing the tenant's kept turn, wire/reparse.py),
rewritten stage by stage (rewrite/pipeline.py, the default settings), serialized if it
changed (spliced from the bytes it shares with the parse: wire/splice.py), learned from as an
accepted call, and kept, as a served call is. The first pass is a new conversation (every
text new to the memo but what an earlier turn sent); later passes replay the same turns
again, as bench/instructions.py's session bodies cycle (a turn's texts are then in the memo
by value, but its parse shares objects only with the turn before it). Each step's time is
the best of the later passes' means, so a pause of the machine in one pass does not count.

Instructions instead of time (load-insensitive): run it under callgrind with the count off,
`--callgrind` switches it on after the first pass (callgrind_control), and the count of
`--passes 3` less that of `--passes 1`, over two passes' turns, is a turn's; `--repeat
STEP=11` runs that step (a stage, `parse` or `serialize`) 11 times a turn (a stage only
reads the learned state), and the difference over the extra runs is the step's own:

    taskset -c 1 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \
        .venv/bin/python bench/session_stages.py --session codex-projects --passes 3 --callgrind
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for path in (BENCH, BENCH.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from staging.parts import Parts  # noqa: E402

from gateway.endpoint.prepared import ask_usage  # noqa: E402
from gateway.rewrite.pipeline import STAGES  # noqa: E402
from gateway.server.heap import freeze_startup_heap  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.wire.formats import ANTHROPIC_MESSAGES, OPENAI_RESPONSES, WireFormat  # noqa: E402
from tests.support.fixtures import FIXTURES, load  # noqa: E402

SESSIONS: dict[str, WireFormat] = {
    "claude-long": ANTHROPIC_MESSAGES,
    "claude-projects": ANTHROPIC_MESSAGES,
    "codex-projects": OPENAI_RESPONSES,
}


def one_pass(
    parts: Parts, wire: WireFormat, raws: list[bytes], repeat: dict[str, int] | None = None
) -> dict[str, float]:
    """µs per turn of each step over one replay of the turns; `repeat`: steps run that many
    times a turn (the last run's result kept)."""
    spent: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    times = repeat or {}
    for raw in raws:
        start = clock()
        for _ in range(times.get("parse", 1)):
            copy = bytes(bytearray(raw))  # a call's body is a new bytes object
            reading = parts.read(copy, copy=False)
        spent["parse"] += clock() - start
        request = parts.request_for(wire, reading.parsed)
        for stage in STAGES[wire.name]:
            name = stage.__name__.lstrip("_")
            start = clock()
            for _ in range(times.get(name, 1)):
                out = stage(request, parts.context)
            request = out
            spent[name] += clock() - start
        start = clock()
        payload, filtered = ask_usage(wire, request.body)
        if request.changed or filtered:
            for _ in range(times.get("serialize", 1)):
                reading.dumps(payload)
        spent["serialize"] += clock() - start
        start = clock()
        parts.memory.learn(request.observations)
        reading.keep()
        spent["learn + keep"] += clock() - start
    return {step: seconds / len(raws) * 1e6 for step, seconds in spent.items()}


def main() -> None:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("--session", action="append", choices=sorted(SESSIONS))
    parse.add_argument("--passes", type=int, default=5)
    parse.add_argument(
        "--callgrind",
        action="store_true",
        help="under callgrind: the count switched on after a first pass, --passes after it",
    )
    parse.add_argument("--repeat", default="", help="STEP=K: that step run K times a turn")
    args = parse.parse_args()
    step, _, times = args.repeat.partition("=")
    repeat = {step: int(times)} if step else {}
    for session in args.session or ["claude-long", "codex-projects"]:
        raws = [call.raw_body() for call in load(FIXTURES / f"{session}.jsonl").calls]
        parts = Parts(Settings())
        if args.callgrind:
            counted(parts, SESSIONS[session], raws, args.passes, repeat)
            continue
        passes = [one_pass(parts, SESSIONS[session], raws) for _ in range(max(args.passes, 2))]
        later = min(passes[1:], key=lambda p: sum(p.values()))
        size = sum(map(len, raws)) / len(raws) / 1024
        print(f"\n{session}: {len(raws)} turns, {size:.0f} KB on average; µs per turn")
        print(f"{'step':<22}{'first pass':>12}{'later':>10}")
        for step in passes[0]:
            print(f"{step:<22}{passes[0][step]:>12.1f}{later[step]:>10.1f}")
        print(f"{'total':<22}{sum(passes[0].values()):>12.1f}{sum(later.values()):>10.1f}")


def counted(
    parts: Parts, wire: WireFormat, raws: list[bytes], passes: int, repeat: dict[str, int]
) -> None:
    """A first pass, then callgrind's count switched on for `passes` more, as served: the
    startup heap frozen and the young generation's threshold raised (server/heap.py)."""
    freeze_startup_heap()
    one_pass(parts, wire, raws)
    on = ["callgrind_control", "--instr=on", str(os.getpid())]
    subprocess.run(on, check=True, capture_output=True)
    for _ in range(passes):
        one_pass(parts, wire, raws, repeat)


if __name__ == "__main__":
    main()
