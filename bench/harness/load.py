"""Load generation: `wrk` (C, one thread, closed loop, a Lua script for the POST body) for
throughput and whole-response latency, and `Probe`, a raw-socket asyncio client that
timestamps the status line and the first text delta (time to first byte)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .ports import HOST
from .process import children_cpu_seconds, pinned
from .proxies import LOAD_CORE, Server

# The first text delta of an answer: Messages' event, Responses' event.
FIRST_DELTAS = (b"content_block_delta", b"output_text.delta")
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests":%.0f,"duration_us":%.0f,"p50_us":%.1f,"p99_us":%.1f,"max_us":%.1f,' ..
    '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_string(data: bytes) -> str:
    return "'" + data.decode().replace("\\", "\\\\").replace("'", "\\'") + "'"


def wrk_script(
    server: Server,
    bodies: Sequence[bytes],
    stop_after: int | None = None,
    path: str = "/v1/messages",
) -> str:
    """POSTs of `bodies` (in turn, request by request: a session's turns in order, cycling;
    wrk makes one request it does not send, so the cycle starts further on) to `path` with
    `server`'s headers for it; with `stop_after`, progress in tenths on stdout and a stop
    after that many responses."""
    lines = ['wrk.method = "POST"', f'wrk.path = "{path}"']
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in server.headers(path)]
    if len(bodies) == 1:
        lines.append(f"wrk.body = {lua_string(bodies[0])}")
    else:
        lines.append("local bodies = {" + ", ".join(lua_string(b) for b in bodies) + "}")
        lines.append("local sent = 0")
        lines.append(
            "request = function() sent = sent + 1; "
            "return wrk.format(nil, nil, nil, bodies[sent % #bodies + 1]) end"
        )
    if stop_after is not None:  # the runner stops wrk at the end
        step = max(stop_after // 10, 1)
        lines.append("local seen = 0")
        lines.append(
            "response = function(status, headers, body) seen = seen + 1; "
            f"if seen % {step} == 0 then io.write('progress ', seen, '\\n'); io.flush() end; "
            f"if seen >= {stop_after} then wrk.thread:stop() end end"
        )
    return "\n".join(lines) + "\n" + WRK_DONE


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    wrk_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_command(
    server: Server, script: str, connections: int, seconds: float, workdir: Path
) -> list[str]:
    """wrk on the load core, `connections` keep-alive connections for `seconds`."""
    path = workdir / "script.lua"
    path.write_text(script)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    return pinned(LOAD_CORE, [*command, "-s", str(path), server.url])


def wrk_result(stdout: str, wrk_cpu_s: float) -> WrkResult:
    line = next(ln for ln in reversed(stdout.splitlines()) if ln.startswith("{"))
    data = json.loads(line)
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
        errors=sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout")),
        wrk_cpu_s=wrk_cpu_s,
    )


def run_wrk(
    server: Server, script: str, connections: int, seconds: float, workdir: Path
) -> WrkResult:
    command = wrk_command(server, script, connections, seconds, workdir)
    before = children_cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return wrk_result(done.stdout, children_cpu_seconds() - before)


@dataclass
class Timing:
    ttfb_s: float  # request written → status line read
    first_delta_s: float | None  # → the chunk holding the first text delta
    total_s: float
    status: int


class Probe:
    """A minimal keep-alive HTTP/1.1 client on raw asyncio streams: little enough work per
    request that its own cost is small and identical for every path it measures."""

    def __init__(self, server: Server, bodies: Sequence[bytes], path: str = "/v1/messages") -> None:
        """Requests of `bodies` in turn (a session's turns, in order, cycling), shared by
        every connection: the next request sent, on whichever connection, is the next body."""
        head = f"POST {path} HTTP/1.1\r\nhost: {HOST}:{server.port}\r\n"
        head += "".join(f"{n}: {v}\r\n" for n, v in server.headers(path))
        self.port = server.port
        self.requests = [
            (head + f"content-length: {len(body)}\r\n\r\n").encode() + body for body in bodies
        ]
        self._next = itertools.cycle(self.requests)

    def run(self, connections: int, warmup_s: float, seconds: float) -> list[Timing]:
        return asyncio.run(self._run(connections, warmup_s, seconds))

    async def _run(self, connections: int, warmup_s: float, seconds: float) -> list[Timing]:
        start = time.perf_counter()
        timings: list[Timing] = []
        await asyncio.gather(
            *(
                self._connection(start + warmup_s, start + warmup_s + seconds, timings)
                for _ in range(connections)
            )
        )
        return timings

    async def _connection(self, measure_from: float, until: float, out: list[Timing]) -> None:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        try:
            while (sent := time.perf_counter()) < until:
                writer.write(next(self._next))
                timing = await self._response(reader, sent)
                if sent >= measure_from:
                    out.append(timing)
        finally:
            writer.close()
            await writer.wait_closed()

    @staticmethod
    async def _response(reader: asyncio.StreamReader, sent: float) -> Timing:
        status_line = await reader.readline()
        first_byte = time.perf_counter()
        length, chunked = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        first_delta: float | None = None
        if chunked:
            while size := int((await reader.readline()).split(b";")[0], 16):
                chunk = await reader.readexactly(size + 2)
                if first_delta is None and any(d in chunk for d in FIRST_DELTAS):
                    first_delta = time.perf_counter() - sent
            await reader.readline()  # the empty trailer section
        else:
            await reader.readexactly(length)
        return Timing(
            ttfb_s=first_byte - sent,
            first_delta_s=first_delta,
            total_s=time.perf_counter() - sent,
            status=int(status_line.split(b" ", 2)[1]),
        )
