"""Where one model call's CPU goes: the gateway app in-process, the emulator beside it.

Run from the repository root:

    .venv/bin/python bench/profile_call.py                        # 340 KB Claude Code turn
    .venv/bin/python bench/profile_call.py --body 1kb --calls 200 --top 30
    .venv/bin/python bench/profile_call.py --body codex-session --calls 200   # turns in order

The emulator runs as its own process (`gateway emulate --latency none`); the gateway is
`create_app` with its default settings (every rewrite rule, metering, the call log to a
temporary file), called through ASGI by a minimal driver, so the HTTP server's parsing of
the request (uvicorn, httptools) is not in it — bench/overhead.py measures that whole.
First the CPU per call (user and system time, no profiler) for a streaming and a JSON call,
then a cProfile of the streaming calls on CPU time: functions by own and cumulative time.

`--server` measures instead the CPU per call of a real `gateway serve` process (one worker,
pinned to core 1 with taskset), `--concurrency` calls at a time (1 by default): the
in-process number plus the HTTP server's and the sockets' share.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from harness import HOST, free_port, gateway_process, started  # noqa: E402
from measure.bodies import SESSIONS, session_bodies  # noqa: E402
from staging.bodies import Body, all_bodies  # noqa: E402

Message = dict[str, Any]


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (HOST, 50000),
        "server": (HOST, 8080),
    }


async def call(
    app: Callable[..., Awaitable[None]], path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """One request through the ASGI app; the response's status (its bytes are dropped)."""
    sent = False
    done = asyncio.Event()
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body"):
            done.set()

    await app(scope(path, headers), receive, send)
    return status


def chosen(name: str) -> tuple[Body, list[bytes]]:
    """The body named `name` and the turns to send: that body alone, or a recorded session's
    turns in order (`claude-code-session`, `codex-session`: turn i on call i, cycling)."""
    if name in SESSIONS:
        prefix = name.removesuffix("-session")
        body = next(b for b in all_bodies() if b.name == f"{prefix}-first-turn")
        return body, list(session_bodies(name))
    body = next(b for b in all_bodies() if b.name == name)
    return body, [body.raw]


def headers_for(wire: str, body: bytes) -> list[tuple[bytes, bytes]]:
    common = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if wire == "messages":
        return [*common, (b"x-api-key", b"sk-ant-bench"), (b"anthropic-version", b"2023-06-01")]
    return [*common, (b"authorization", b"Bearer sk-bench")]


async def run(args: argparse.Namespace, emulator: str, log: Path) -> str:
    os.environ.update(
        {
            "GATEWAY_SERVER__START_EMULATOR": "false",
            "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": emulator,
            "GATEWAY_PROVIDERS__OPENAI__BASE_URL": emulator,
            "GATEWAY_METERING__CALL_LOG": str(log),
        }
    )
    from gateway.app import create_app
    from gateway.settings import Settings

    app = create_app(Settings())
    body, turns = chosen(args.body)
    stream = [orjson.dumps({**orjson.loads(turn), "stream": True}) for turn in turns]
    plain = [orjson.dumps({**orjson.loads(turn), "stream": False}) for turn in turns]
    size = sum(map(len, turns)) // len(turns)
    out = [f"body: {args.body}, {len(turns)} turns of {size:,} bytes on average, "]
    out[0] += f"{body.wire.name}, {args.calls} calls"

    async def calls(raws: list[bytes], n: int) -> tuple[float, float]:
        """(user, system) CPU ms per call; call i sends raws[i % len(raws)]."""
        before = os.times()
        for i in range(n):
            raw = raws[i % len(raws)]
            status = await call(app, body.path, headers_for(body.wire.name, raw), raw)
            assert status == 200, status
        after = os.times()
        return (after.user - before.user) / n * 1000, (after.system - before.system) / n * 1000

    await calls(stream, 10)  # warm: connections, learned state
    await calls(plain, 10)
    for label, raw in (("stream", stream), ("json", plain)):
        user, system = await calls(raw, args.calls)
        out.append(
            f"CPU per call, {label}: {user + system:.2f} ms ({user:.2f} user, {system:.2f} system)"
        )
    # CPU time, not wall time: the wait for the emulator is not the gateway's cost.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    await calls(plain if os.environ.get("PROFILE_JSON") else stream, args.calls)
    profile.disable()
    if os.environ.get("PROFILE_DUMP"):
        profile.dump_stats(os.environ["PROFILE_DUMP"])
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).strip_dirs().sort_stats(order)
        stats.print_stats(args.top)
        out.append(f"\n--- streaming calls, by {order} (cProfile) ---\n" + text.getvalue())
    return "\n".join(out)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def _post_all(
    url: str, path: str, raw: bytes, headers: dict[str, str], calls: int, concurrency: int
) -> None:
    """`calls` requests, `concurrency` at a time, each checked for a 200."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        left = iter(range(calls))

        async def worker() -> None:
            for _ in left:
                response = await client.post(path, content=raw, headers=headers)
                assert response.status_code == 200, response.text

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def served(args: argparse.Namespace, emulator: str, log: Path) -> str:
    body = next(b for b in all_bodies() if b.name == args.body)
    port = free_port()
    env = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SERVER__WORKERS": "1",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": emulator,
        "GATEWAY_PROVIDERS__OPENAI__BASE_URL": emulator,
        "GATEWAY_METERING__CALL_LOG": str(log),
    }
    command = ["taskset", "-c", "1", sys.executable, "-m", "gateway", "serve"]
    url = f"http://{HOST}:{port}"
    out = [
        f"gateway serve, body: {body.name}, {len(body.raw):,} bytes, {args.calls} calls,"
        f" c{args.concurrency}"
    ]
    with started(command, url + "/healthz", env) as process, httpx.Client(base_url=url) as client:
        for label, stream in (("stream", True), ("json", False)):
            raw = orjson.dumps({**orjson.loads(body.raw), "stream": stream})
            headers = {k.decode(): v.decode() for k, v in headers_for(body.wire.name, raw)}
            for _ in range(10):  # warm
                client.post(body.path, content=raw, headers=headers).read()
            before = cpu_seconds(process.pid)
            asyncio.run(_post_all(url, body.path, raw, headers, args.calls, args.concurrency))
            per_call = (cpu_seconds(process.pid) - before) / args.calls * 1000
            out.append(f"CPU per call, {label}: {per_call:.2f} ms (/proc stat, whole process)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--body", default="claude-code-late-turn")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--server", action="store_true", help="CPU per call of gateway serve")
    parser.add_argument("--concurrency", type=int, default=1, help="with --server")
    args = parser.parse_args(argv)
    port = free_port()
    emulator_args = ("emulate", "--port", str(port), "--latency", "none")
    with (
        tempfile.TemporaryDirectory() as folder,
        gateway_process(*emulator_args, port=port) as emulator,
    ):
        log = Path(folder) / "calls.log"
        print(served(args, emulator, log) if args.server else asyncio.run(run(args, emulator, log)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
