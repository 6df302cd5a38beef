"""A new session's first turn, each call: the parse and the rewrite, µs per call.

    taskset -c 1 .venv/bin/python bench/new_session.py [--body NAME] [--runs N]

Each run sends the recorded first turn with a session id of its own (Claude Code's in
`metadata`, Codex's `prompt_cache_key` and `client_metadata`) and, unless `--same-prompt`,
a user prompt of its own (the last text of the conversation's last item): the system
prompt and tools of the sessions before it, as a client's next session sends them. The
tenant's learned state holds the earlier sessions (bench/stages.py's, and every run before
this one, each kept as an accepted call is: its lessons learned, its body kept for
reparse). Rows: the parse (reusing a kept turn where the bytes repeat one), each rewrite
stage on its output, the serialization; `parse cold` is `orjson.loads` alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from staging.bodies import Body, all_bodies, responses  # noqa: E402
from staging.parts import Parts  # noqa: E402

from gateway.endpoint.prepared import ask_usage  # noqa: E402
from gateway.rewrite.pipeline import STAGES  # noqa: E402
from gateway.settings import Settings  # noqa: E402

BODIES = ("claude-code-first-turn", "codex-first-turn")
LEARN_TIMES = 6


def session_of(raw: bytes) -> bytes:
    """The session id a recorded first turn carries."""
    body = orjson.loads(raw)
    if isinstance(key := body.get("prompt_cache_key"), str):
        return key.encode()
    user = orjson.loads(body["metadata"]["user_id"])
    return str(next(v for v in user.values() if v.count("-") == 4)).encode()


def new_session(raw: bytes, session: bytes, prompt: bool) -> bytes:
    """The body with a new session id and, if `prompt`, a new last text."""
    raw = raw.replace(session, str(uuid.uuid4()).encode())
    if not prompt:
        return raw
    body = orjson.loads(raw)
    last = body["messages" if "messages" in body else "input"][-1]
    texts = [p for p in last["content"] if isinstance(p, dict) and "text" in p]
    texts[-1]["text"] += f" ({uuid.uuid4()})"
    return orjson.dumps(body)  # the recorded bodies are compact: as a client sends them


def measure_body(settings: Settings, body: Body, runs: int, prompt: bool) -> dict[str, float]:
    parts = Parts(settings)
    _, plain = responses(settings, body)
    usage = body.wire.usage_from_body(plain).usage
    at = time.time() - 3600.0
    for raw in (*body.earlier, *[body.raw] * LEARN_TIMES):
        parts.call(body, raw, usage, at)
        at += 60.0
    session = session_of(body.raw)
    stages = STAGES[body.wire.name]
    names = ["parse", *(s.__name__.lstrip("_").removeprefix("openai_") for s in stages)]
    times: dict[str, list[float]] = {name: [] for name in [*names, "serialize", "parse cold"]}
    for _ in range(runs):
        raw = new_session(body.raw, session, prompt)
        start = time.perf_counter()
        reading = parts.read(raw, copy=False)
        times["parse"].append(time.perf_counter() - start)
        request = parts.request(body, reading.parsed)
        for name, stage in zip(names[1:], stages, strict=True):
            start = time.perf_counter()
            request = stage(request, parts.context)
            times[name].append(time.perf_counter() - start)
        payload, filtered = ask_usage(body.wire, request.body)
        start = time.perf_counter()
        if request.changed or filtered:
            reading.dumps(payload)
        times["serialize"].append(time.perf_counter() - start)
        start = time.perf_counter()
        orjson.loads(raw)
        times["parse cold"].append(time.perf_counter() - start)
        parts.memory.learn(request.observations)  # accepted: kept as a call's are
        reading.keep()
    row = {name: statistics.median(ts) * 1e6 for name, ts in times.items()}
    row["total"] = sum(v for k, v in row.items() if k != "parse cold")
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--body", action="append", choices=BODIES)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--same-prompt", action="store_true", help="only the session id new")
    args = parser.parse_args()
    settings = Settings()
    for body in all_bodies():
        if body.name in (args.body or BODIES):
            row = measure_body(settings, body, args.runs, not args.same_prompt)
            print(body.name, "  ".join(f"{k} {v:.0f}" for k, v in row.items() if v >= 0.5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
