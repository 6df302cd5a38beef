"""The gateway's overhead: direct to the emulator vs through `gateway serve`, on pinned cores.

Run from the repository root (one run produces the whole table):

    .venv/bin/python bench/overhead.py            # full: 10 s per cell, 100,000-request soak
    .venv/bin/python bench/overhead.py --quick    # 2 s per cell, 5,000-request soak
    .venv/bin/python bench/overhead.py --setup-litellm   # once: LiteLLM in .cache/litellm-venv
    .venv/bin/python bench/overhead.py --body claude-code-late-turn   # a recorded 340 KB body

Layout: the gateway worker alone on core 1; the emulator (`--latency none`) and the load
generators on core 0. The floors (bench/passthrough.py, a do-nothing raw-ASGI passthrough on
the gateway's stack) run on core 1 exactly like the gateway: the gateway's own work is the
difference. Throughput and latency percentiles come from `wrk` (C, one thread, closed loop, Lua
script for the POST body); time to first byte from a small raw-socket asyncio client (`Probe`)
that timestamps the status line and the first `content_block_delta`. Proxy CPU is read from
/proc/<pid>/stat around each cell. See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from harness import free_port, rss_kib

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
LITELLM_VENV = REPO / ".cache" / "litellm-venv"
LITELLM_KEY = "sk-tollgate-bench-0123456789abcdef0123456789abcdef"  # local master key only
LOAD_CORE, GATEWAY_CORE = 0, 1
HOST = "127.0.0.1"
REPLY_WORDS = 30  # one text delta per word
CONCURRENCY = (1, 10, 64)
PROBE_CONCURRENCY = (1, 10)
QUIET_LIMIT = 0.05  # other processes' CPU during a cell, in cores, above which it is re-run
QUIET_TRIES = 5
QUIET_WINDOW_S = 3.0  # before a cell, this long with other processes quiet
QUIET_WAIT_S = 300.0  # at most
CLK_TCK = os.sysconf("SC_CLK_TCK")

BODY = b'{"model":"claude-haiku-4-5","max_tokens":200,"messages":[{"role":"user","content":"hi"}]}'
STREAM_BODY = BODY[:-1] + b',"stream":true}'
FILLER = "filler"  # --body: the small body above; otherwise a recorded one (recorded_bodies)


def recorded_bodies() -> dict[str, bytes]:
    """Real-size bodies from the recorded fixtures (tests/support/fixtures.py): a Claude Code
    session's first turn (~116 KB) and a late turn (300 KB+), streaming, as the client sent
    them."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.fixtures import bench_bodies

    return bench_bodies()


def body_pair(name: str) -> tuple[bytes, bytes]:
    """(JSON body, streaming body) for --body `name`: the recorded body is the stream one, as
    sent; the JSON one is the same bytes with its top-level `"stream":true` made false."""
    if name == FILLER:
        return BODY, STREAM_BODY
    stream = recorded_bodies()[name]
    parsed = json.loads(stream)
    head = stream.rsplit(b'"stream":true', 1)
    plain = b'"stream":false'.join(head)
    if parsed.get("stream") is not True or len(head) != 2 or json.loads(plain)["stream"]:
        plain = json.dumps({**parsed, "stream": False}, separators=(",", ":")).encode()
    return plain, stream


# --------------------------------------------------------------------------- processes


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    api_key: str = "k"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1/messages"


def pinned(core: int, command: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command]  # taskset execs: the pid is the server's


def spawn(name: str, command: list[str], env: dict[str, str], port: int, logs: Path) -> Server:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    return Server(name, port, proc, log)


def start_emulator(logs: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "gateway", "emulate", "--port", str(port)]
    env = {"GATEWAY_EMULATOR__REPLY_WORDS": str(REPLY_WORDS)}
    return spawn("emulator", pinned(LOAD_CORE, [*command, "--latency", "none"]), env, port, logs)


def start_gateway(
    transport: str,
    upstream: Server,
    logs: Path,
    state: dict[str, str] | None = None,
    name: str | None = None,
) -> Server:
    port = free_port()
    env = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_SERVER__WORKERS": "1",
        "GATEWAY_SERVER__UPSTREAM_TRANSPORT": transport,
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": f"http://{HOST}:{upstream.port}",
        **(state or {}),
    }
    command = pinned(GATEWAY_CORE, [sys.executable, "-m", "gateway", "serve"])
    return spawn(name or f"gateway-{transport}", command, env, port, logs)


@contextmanager
def redis_server(logs: Path) -> Iterator[Server]:
    """A redis-server of its own, on the load core, keeping nothing on disk."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", HOST, "--save", ""]
    server = spawn("redis", pinned(LOAD_CORE, [*command, "--appendonly", "no"]), {}, port, logs)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not up: {tail(server.log)}") from None
                time.sleep(0.1)
        yield server
    finally:
        stop(server)


def gateway_key(state: dict[str, str]) -> str:
    """A gateway key with a budget and rate limits, so every call is admitted and charged."""
    command = [sys.executable, "-m", "gateway", "keys", "create", "--name", "bench"]
    command += ["--daily-budget-usd", "1000000", "--rpm", "100000000", "--tpm", "100000000000"]
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, **state}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def start_floor(client: str, upstream: Server, logs: Path) -> Server:
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "passthrough.py"), "--client", client]
    command += ["--port", str(port), "--upstream", f"http://{HOST}:{upstream.port}"]
    env = {"PYTHONPATH": str(REPO)}  # the same gateway tree as `-m gateway` from REPO imports
    return spawn(f"floor-{client}", pinned(GATEWAY_CORE, command), env, port, logs)


def start_litellm(upstream: Server, logs: Path) -> Server:
    port = free_port()
    config = logs / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: claude-haiku-4-5\n"
        "    litellm_params:\n"
        "      model: anthropic/claude-haiku-4-5\n"
        f"      api_base: http://{HOST}:{upstream.port}\n"
        "      api_key: k\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    command += ["--host", HOST, "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    server = spawn("litellm", pinned(GATEWAY_CORE, command), env, port, logs)
    server.api_key = LITELLM_KEY
    return server


def wait_ready(server: Server, timeout_s: float = 90.0) -> None:
    """Until one real request succeeds: the listening socket alone is not readiness."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(
        server.url, data=BODY, headers=dict(request_headers(server.api_key)), method="POST"
    )
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {tail(server.log)}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout_s:.0f} s: {tail(server.log)}")


def tail(log: Path, lines: int = 5) -> str:
    return " / ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    return rss_kib(pid) * 1024 / 1e6


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def foreign_cpu_seconds() -> float:
    """CPU time used so far by every process outside this benchmark's tree — another workload
    on the machine. Counting reaped children's time (cutime, cstime) keeps the total steady
    when such a process exits: its time moves to its parent."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            parents[int(entry.name)] = int(fields[1])
            used[int(entry.name)] = sum(int(f) for f in fields[11:15]) / CLK_TCK
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    ours, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        ours.add(pid)
        todo += children.get(pid, [])
    return sum(seconds for pid, seconds in used.items() if pid not in ours)


# --------------------------------------------------------------------------- wrk


def request_headers(api_key: str) -> list[tuple[str, str]]:
    return [
        ("x-api-key", api_key),
        ("anthropic-version", "2026-10-21"),
        ("content-type", "application/json"),
    ]


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


def wrk_script(api_key: str, bodies: Sequence[bytes], stop_after: int | None = None) -> str:
    lines = ['wrk.method = "POST"']
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in request_headers(api_key)]
    if len(bodies) == 1:
        lines.append(f"wrk.body = {lua_string(bodies[0])}")
    else:  # alternate the bodies request by request
        lines.append("local bodies = {" + ", ".join(lua_string(b) for b in bodies) + "}")
        lines.append("local sent = 0")
        lines.append(
            "request = function() sent = sent + 1; "
            "return wrk.format(nil, nil, nil, bodies[sent % #bodies + 1]) end"
        )
    if stop_after is not None:  # report progress in tenths; the runner stops wrk at the end
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


# --------------------------------------------------------------------------- probe


@dataclass
class Timing:
    ttfb_s: float  # request written → status line read
    first_delta_s: float | None  # → the chunk holding the first content_block_delta
    total_s: float
    status: int


class Probe:
    """A minimal keep-alive HTTP/1.1 client on raw asyncio streams: little enough work per
    request that its own cost is small and identical for every path it measures."""

    def __init__(self, server: Server, body: bytes) -> None:
        head = f"POST /v1/messages HTTP/1.1\r\nhost: {HOST}:{server.port}\r\n"
        head += "".join(f"{n}: {v}\r\n" for n, v in request_headers(server.api_key))
        head += f"content-length: {len(body)}\r\n\r\n"
        self.port = server.port
        self.request = head.encode() + body

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
                writer.write(self.request)
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
                if first_delta is None and b"content_block_delta" in chunk:
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


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --------------------------------------------------------------------------- cells


@dataclass
class Cell:
    path: str  # direct, floor-<client>, gateway-<transport>, litellm
    mode: str  # json, stream
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    proxy_cpu_ms_per_req: float | None  # the gateway's (or LiteLLM's) own CPU
    proxy_core_busy: float | None  # fraction of its core it used during the cell
    load_core_busy: float  # emulator + wrk, fraction of core 0
    wrk_cpu_us_per_req: float
    foreign_cores: float = 0.0  # other processes' CPU during the cell, in cores


@dataclass
class ProbeCell:
    path: str
    mode: str
    concurrency: int
    samples: int
    errors: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    first_delta_p50_ms: float
    total_p50_ms: float
    total_p99_ms: float
    foreign_cores: float = 0.0


@dataclass
class Soak:
    transport: str
    requests: int
    seconds: float
    errors: int
    rss_mb: list[tuple[float, float]]  # (fraction of the soak elapsed, MB)

    def at(self, fraction: float) -> float:
        return min(self.rss_mb, key=lambda sample: abs(sample[0] - fraction))[1]


@dataclass
class Report:
    args: dict[str, object]
    environment: dict[str, str]
    cells: list[Cell] = field(default_factory=list)
    probes: list[ProbeCell] = field(default_factory=list)
    rss_after_mb: dict[str, float] = field(default_factory=dict)
    soaks: list[Soak] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)  # cells re-run: the machine was busy

    def cell(self, path: str, mode: str, concurrency: int) -> Cell | None:
        return next(
            (c for c in self.cells if (c.path, c.mode, c.concurrency) == (path, mode, concurrency)),
            None,
        )

    def probe(self, path: str, mode: str, concurrency: int) -> ProbeCell | None:
        return next(
            (
                p
                for p in self.probes
                if (p.path, p.mode, p.concurrency) == (path, mode, concurrency)
            ),
            None,
        )


CellT = TypeVar("CellT", Cell, ProbeCell)


@dataclass
class Bench:
    emulator: Server
    seconds: float
    warmup_s: float
    workdir: Path
    report: Report
    bodies: tuple[bytes, bytes] = (BODY, STREAM_BODY)  # (JSON, stream), see --body
    quiet: bool = True  # wait for, and re-run cells until, a quiet machine

    def measure(self, path: str, server: Server, proxy: Server | None) -> None:
        """Every wrk cell and probe cell for one path (direct or through a proxy), then the
        proxy's RSS."""
        log(f"{path} :{server.port}" + (f" (pid {proxy.proc.pid})" if proxy else ""))
        for mode, body in zip(("json", "stream"), self.bodies, strict=True):
            script = wrk_script(server.api_key, [body])
            for concurrency in CONCURRENCY:
                self._wrk_cell(path, mode, concurrency, server, proxy, script)
            for concurrency in PROBE_CONCURRENCY if mode == "stream" else (1,):
                self._probe_cell(path, mode, concurrency, server, body)
        if proxy is not None:
            self.report.rss_after_mb[path] = rss_mb(proxy.proc.pid)

    def _quietly(self, label: str, run: Callable[[], CellT]) -> CellT:
        """Runs a cell when no other process is busy, and again (up to QUIET_TRIES times in
        all) if one was busy during it: a shared core would skew every number in it. Keeps
        the quietest try."""
        tries: list[CellT] = []
        for _ in range(QUIET_TRIES if self.quiet else 1):
            if self.quiet:
                self._wait_for_quiet()
            before, started = foreign_cpu_seconds(), time.monotonic()
            cell = run()
            cell.foreign_cores = (foreign_cpu_seconds() - before) / (time.monotonic() - started)
            tries.append(cell)
            if cell.foreign_cores <= QUIET_LIMIT or not self.quiet:
                break
            self.report.reruns.append(f"{label} ({cell.foreign_cores:.0%})")
            log(f"  {label}: other processes used {cell.foreign_cores:.0%} of a core; again")
        return min(tries, key=lambda cell: cell.foreign_cores)

    @staticmethod
    def _wait_for_quiet() -> None:
        deadline = time.monotonic() + QUIET_WAIT_S
        while time.monotonic() < deadline:
            before = foreign_cpu_seconds()
            time.sleep(QUIET_WINDOW_S)
            if foreign_cpu_seconds() - before <= QUIET_LIMIT * QUIET_WINDOW_S:
                return

    def _wrk_cell(
        self,
        path: str,
        mode: str,
        concurrency: int,
        server: Server,
        proxy: Server | None,
        script: str,
    ) -> None:
        cell = self._quietly(
            f"{path} {mode} c={concurrency}",
            lambda: self._wrk_run(path, mode, concurrency, server, proxy, script),
        )
        self.report.cells.append(cell)
        cpu = f"{cell.proxy_cpu_ms_per_req:.3f} ms CPU/req" if proxy else ""
        log(
            f"  {path:19} {mode:6} c={concurrency:<3} {cell.rps:8.0f} req/s  "
            f"p50 {cell.p50_ms:7.3f} ms  p99 {cell.p99_ms:8.3f} ms  errors {cell.errors}  {cpu}"
        )

    def _wrk_run(
        self,
        path: str,
        mode: str,
        concurrency: int,
        server: Server,
        proxy: Server | None,
        script: str,
    ) -> Cell:
        run_wrk(server, script, concurrency, self.warmup_s, self.workdir)
        proxy_before = cpu_seconds(proxy.proc.pid) if proxy else 0.0
        emulator_before = cpu_seconds(self.emulator.proc.pid)
        result = run_wrk(server, script, concurrency, self.seconds, self.workdir)
        emulator_cpu = cpu_seconds(self.emulator.proc.pid) - emulator_before
        proxy_cpu = cpu_seconds(proxy.proc.pid) - proxy_before if proxy else None
        requests = max(result.requests, 1)
        return Cell(
            path=path,
            mode=mode,
            concurrency=concurrency,
            rps=result.rps,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            max_ms=result.max_ms,
            requests=result.requests,
            errors=result.errors,
            proxy_cpu_ms_per_req=proxy_cpu * 1e3 / requests if proxy_cpu is not None else None,
            proxy_core_busy=proxy_cpu / result.seconds if proxy_cpu is not None else None,
            load_core_busy=(emulator_cpu + result.wrk_cpu_s) / result.seconds,
            wrk_cpu_us_per_req=result.wrk_cpu_s * 1e6 / requests,
        )

    def _probe_cell(
        self, path: str, mode: str, concurrency: int, server: Server, body: bytes
    ) -> None:
        probe = self._quietly(
            f"{path} {mode} c={concurrency} probe",
            lambda: self._probe_run(path, mode, concurrency, server, body),
        )
        self.report.probes.append(probe)
        log(
            f"  {path:19} {mode:6} c={concurrency:<3} probe: TTFB p50 {probe.ttfb_p50_ms:.3f} ms"
            f"  first delta p50 {probe.first_delta_p50_ms:.3f} ms"
            f"  total p50 {probe.total_p50_ms:.3f} ms  ({probe.samples} samples)"
        )

    def _probe_run(
        self, path: str, mode: str, concurrency: int, server: Server, body: bytes
    ) -> ProbeCell:
        timings = Probe(server, body).run(concurrency, self.warmup_s, self.seconds)
        ok = [t for t in timings if t.status == 200]
        deltas = [t.first_delta_s for t in ok if t.first_delta_s is not None]
        return ProbeCell(
            path=path,
            mode=mode,
            concurrency=concurrency,
            samples=len(ok),
            errors=len(timings) - len(ok),
            ttfb_p50_ms=percentile([t.ttfb_s for t in ok], 50) * 1e3,
            ttfb_p99_ms=percentile([t.ttfb_s for t in ok], 99) * 1e3,
            first_delta_p50_ms=percentile(deltas, 50) * 1e3,
            total_p50_ms=percentile([t.total_s for t in ok], 50) * 1e3,
            total_p99_ms=percentile([t.total_s for t in ok], 99) * 1e3,
        )

    def soak(self, transport: str, gateway: Server, requests: int) -> Soak:
        """`requests` alternating JSON and stream calls at c=64; the gateway's RSS is read at
        every tenth of them (wrk's script reports progress, and is stopped at the end)."""
        script = wrk_script(gateway.api_key, list(self.bodies), stop_after=requests)
        bound = max(60.0, requests / 100)  # never longer than this, whatever happens
        samples = [(0.0, rss_mb(gateway.proc.pid))]
        command = wrk_command(gateway, script, 64, bound, self.workdir)
        before = children_cpu_seconds()
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert wrk.stdout is not None
        output: list[str] = []
        for line in wrk.stdout:
            if line.startswith("progress "):
                seen = int(line.split()[1])
                samples.append((seen / requests, rss_mb(gateway.proc.pid)))
                if seen >= requests:
                    wrk.send_signal(signal.SIGINT)  # wrk ends its sleep, reports, and exits
            else:
                output.append(line)
        wrk.wait()
        result = wrk_result("".join(output), children_cpu_seconds() - before)
        return Soak(
            transport=transport,
            requests=result.requests,
            seconds=result.seconds,
            errors=result.errors,
            rss_mb=samples,
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)


# --------------------------------------------------------------------------- LiteLLM


def setup_litellm() -> int:
    """Installs LiteLLM's proxy in its own virtualenv (never into the project's)."""
    python = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    started = time.monotonic()
    try:
        subprocess.run([python, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=300)
        subprocess.run([*pip, "litellm[proxy]"], check=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        log(f"LiteLLM setup failed after {time.monotonic() - started:.0f} s: {error}")
        return 1
    log(f"LiteLLM installed in {LITELLM_VENV} ({time.monotonic() - started:.0f} s)")
    return 0


def litellm_version() -> str | None:
    python = LITELLM_VENV / "bin" / "python"
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


# --------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def machine(packages: Sequence[str]) -> dict[str, str]:
    """The gateway's commit, the CPU, Python and these packages' versions: a result's header."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "gateway"], capture_output=True)
    return {
        "gateway code": commit.stdout.strip() + (" + uncommitted changes" if dirty.stdout else ""),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {version(name)}" for name in packages),
    }


def environment() -> dict[str, str]:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    packages = (
        "uvicorn", "uvloop", "httptools", "fastapi", "starlette", "httpx",
        "httpcore", "httpx-aiohttp", "aiohttp", "orjson",
    )  # fmt: skip
    return {
        **machine(packages),
        "kernel": platform.release(),
        "wrk": (wrk.stdout or wrk.stderr).split("\n", 1)[0].strip(),
        "litellm": litellm_version() or "not installed",
    }


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    limit: float
    unit: str
    lower_is_better: bool = True

    @property
    def verdict(self) -> str:
        if self.measured is None or self.measured != self.measured:
            return "n/a"
        ok = self.measured <= self.limit if self.lower_is_better else self.measured >= self.limit
        return "PASS" if ok else "MISS"

    def row(self, floor: Target | None = None) -> str:
        """The markdown row; `floor` is the same target measured on a passthrough floor."""
        sign = "≤" if self.lower_is_better else "≥"
        reference = f" {fmt(floor.measured)} {self.unit} |" if floor else ""
        return (
            f"| {self.name} | {sign} {self.limit:g} {self.unit} | "
            f"{fmt(self.measured)} {self.unit} | **{self.verdict}** |{reference}"
        )


def targets(report: Report, path: str) -> list[Target]:
    def added(mode: str, attribute: str) -> float | None:
        through, direct = report.cell(path, mode, 1), report.cell("direct", mode, 1)
        if through is None or direct is None:
            return None
        value: float = getattr(through, attribute) - getattr(direct, attribute)
        return value

    def cell_value(mode: str, concurrency: int, attribute: str) -> float | None:
        cell = report.cell(path, mode, concurrency)
        value: float | None = getattr(cell, attribute) if cell else None
        return value

    through, direct = report.probe(path, "stream", 1), report.probe("direct", "stream", 1)
    added_ttfb = through.ttfb_p50_ms - direct.ttfb_p50_ms if through and direct else None
    transport = path.removeprefix("gateway-")
    soak = next((s for s in report.soaks if s.transport == transport), None)
    flat = None
    if soak is not None:
        base = soak.rss_mb[0][1]
        flat = max(abs(mb - base) / base * 100 for _, mb in soak.rss_mb)
    rss = report.rss_after_mb.get(path)
    if soak is not None:
        rss = max([rss or 0.0, *(mb for _, mb in soak.rss_mb)])
    return [
        Target("added latency c=1 p50, JSON", added("json", "p50_ms"), 0.5, "ms"),
        Target("added latency c=1 p99, JSON", added("json", "p99_ms"), 1.0, "ms"),
        Target("added latency c=1 p50, stream", added("stream", "p50_ms"), 0.5, "ms"),
        Target("added latency c=1 p99, stream", added("stream", "p99_ms"), 1.0, "ms"),
        Target("added TTFB c=1 p50, stream", added_ttfb, 0.5, "ms"),
        Target(
            "CPU per JSON request (c=64)", cell_value("json", 64, "proxy_cpu_ms_per_req"), 0.4, "ms"
        ),
        Target(
            "CPU per stream (c=64)", cell_value("stream", 64, "proxy_cpu_ms_per_req"), 0.6, "ms"
        ),
        Target("c=64 JSON throughput", cell_value("json", 64, "rps"), 2500, "req/s", False),
        Target("c=64 JSON p99", cell_value("json", 64, "p99_ms"), 100, "ms"),
        Target("c=64 stream throughput", cell_value("stream", 64, "rps"), 1600, "streams/s", False),
        Target("c=64 stream p99", cell_value("stream", 64, "p99_ms"), 100, "ms"),
        Target("RSS drift across the soak", flat, 10, "%"),
        Target("RSS peak", rss, 150, "MB"),
    ]


def markdown(report: Report, command: str) -> str:
    paths = list(dict.fromkeys(c.path for c in report.cells))
    out = [
        "# Tollgate overhead benchmark",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  ",
        *(f"{key}: {value}  " for key, value in report.environment.items()),
        "",
        f"Emulator at `--latency none`, {REPLY_WORDS} text deltas per stream. The proxy under "
        f"test (gateway, floor or LiteLLM) pinned alone on core {GATEWAY_CORE}; emulator, wrk "
        f"and the probe on core {LOAD_CORE}. {report.args['seconds']:g} s per cell after "
        f"{report.args['warmup']:g} s warm-up. "
        f"Request body: {report.args.get('body', FILLER)} "
        f"({report.args.get('body_bytes', f'{len(BODY)} / {len(STREAM_BODY)}')} bytes). "
        "Latency and throughput: wrk, closed loop, one thread, whole response. "
        "Added = through the proxy minus direct, same cell. CPU/req = the proxy process's "
        "utime+stime over the cell / requests; 'capacity' = 1 / CPU per request, what one "
        "fully busy core would serve.",
        "",
        "## Latency and throughput (wrk)",
        "",
        "| path | mode | c | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| proxy CPU ms/req | capacity req/s | proxy core busy | core 0 busy | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for mode in ("json", "stream"):
        for concurrency in CONCURRENCY:
            direct = report.cell("direct", mode, concurrency)
            for path in paths:
                cell = report.cell(path, mode, concurrency)
                if cell is None:
                    continue
                add50 = cell.p50_ms - direct.p50_ms if direct and path != "direct" else None
                add99 = cell.p99_ms - direct.p99_ms if direct and path != "direct" else None
                cpu = cell.proxy_cpu_ms_per_req
                out.append(
                    f"| {path} | {mode} | {concurrency} | {cell.rps:,.0f} | {fmt(cell.p50_ms)} "
                    f"| {fmt(cell.p99_ms)} | {fmt(add50)} | {fmt(add99)} | {fmt(cpu)} "
                    f"| {fmt(1000 / cpu if cpu else None, 0)} "
                    f"| {fmt(cell.proxy_core_busy * 100 if cell.proxy_core_busy else None, 0)}% "
                    f"| {cell.load_core_busy * 100:.0f}% | {cell.errors} |"
                )
    out += [
        "",
        "## Time to first byte (raw-socket probe)",
        "",
        "TTFB = request written → status line read; first delta = → the chunk holding the "
        "first `content_block_delta`.",
        "",
        "| path | mode | c | TTFB p50 ms | added TTFB p50 ms | TTFB p99 ms "
        "| first delta p50 ms | total p50 ms | total p99 ms | samples | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for mode, concurrencies in (("stream", PROBE_CONCURRENCY), ("json", (1,))):
        for concurrency in concurrencies:
            direct_probe = report.probe("direct", mode, concurrency)
            for path in paths:
                probe = report.probe(path, mode, concurrency)
                if probe is None:
                    continue
                added = (
                    probe.ttfb_p50_ms - direct_probe.ttfb_p50_ms
                    if direct_probe and path != "direct"
                    else None
                )
                out.append(
                    f"| {path} | {mode} | {concurrency} | {fmt(probe.ttfb_p50_ms)} "
                    f"| {fmt(added)} | {fmt(probe.ttfb_p99_ms)} "
                    f"| {fmt(probe.first_delta_p50_ms)} | {fmt(probe.total_p50_ms)} "
                    f"| {fmt(probe.total_p99_ms)} | {probe.samples} | {probe.errors} |"
                )
    out += ["", "## Memory", "", "| path | RSS after the cells MB |", "|---|--:|"]
    out += [f"| {path} | {mb:.1f} |" for path, mb in report.rss_after_mb.items()]
    for soak in report.soaks:
        out += [
            "",
            f"Soak, gateway-{soak.transport}: {soak.requests:,} requests (JSON and stream "
            f"alternating, c=64) in {soak.seconds:.0f} s, {soak.errors} errors. RSS MB at "
            f"start {soak.at(0):.1f}, middle {soak.at(0.5):.1f}, end {soak.at(1):.1f}, "
            f"peak {max(mb for _, mb in soak.rss_mb):.1f}.",
        ]
    gateways = [p for p in paths if p.startswith("gateway-")]
    floors = [p for p in paths if p.startswith("floor-")]
    out += floor_table(report, floors, gateways)
    if gateways:
        out += ["", "## Targets", ""]
        floor = floors[0] if floors else None
        reference = [] if floor is None else targets(report, floor)
        for path in gateways:
            head = "| target | limit | measured | |" + (f" {floor} |" if floor else "")
            out += [f"### {path}", "", head, "|---|--:|--:|---|" + ("--:|" if floor else "")]
            out += [
                target.row(reference[i] if reference else None)
                for i, target in enumerate(targets(report, path))
            ]
            out.append("")
    if report.notes:
        out += ["## Notes", "", *(f"- {note}" for note in report.notes), ""]
    return "\n".join(out)


def floor_table(report: Report, floors: list[str], gateways: list[str]) -> list[str]:
    """CPU per request of the floors and the gateways, and each gateway minus each floor:
    what the gateway's own work costs above the stack it is built on."""
    if not floors or not gateways:
        return []
    columns = [(mode, c) for mode in ("json", "stream") for c in CONCURRENCY]

    def cpu(path: str) -> list[float | None]:
        cells = (report.cell(path, mode, c) for mode, c in columns)
        return [cell.proxy_cpu_ms_per_req if cell else None for cell in cells]

    def row(label: str, values: list[float | None]) -> str:
        return f"| {label} | " + " | ".join(fmt(v) for v in values) + " |"

    out = [
        "",
        "## Gateway minus floor (proxy CPU ms per request)",
        "",
        "Floor = bench/passthrough.py, a do-nothing raw-ASGI passthrough under the same uvicorn, "
        "pinned the same way: `floor-httpx-aiohttp` relays through httpx-aiohttp's transport "
        "as the gateway does, `floor-aiohttp` through aiohttp's ClientSession directly.",
        "",
        "| path | " + " | ".join(f"{mode} c={c}" for mode, c in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    out += [row(path, cpu(path)) for path in (*floors, *gateways)]
    for gateway in gateways:
        for floor in floors:
            diff = [
                g - f if g is not None and f is not None else None
                for g, f in zip(cpu(gateway), cpu(floor), strict=True)
            ]
            out.append(row(f"**{gateway} minus {floor}**", diff))
    return out


def quiet_notes(report: Report) -> list[str]:
    """Says which cells ran while other processes were busy, and which still did at the end."""
    cells: list[Cell | ProbeCell] = [*report.cells, *report.probes]
    noisy = [
        f"{c.path} {c.mode} c={c.concurrency}{' probe' if isinstance(c, ProbeCell) else ''} "
        f"({c.foreign_cores:.0%})"
        for c in cells
        if c.foreign_cores > QUIET_LIMIT
    ]
    notes = []
    if report.reruns:
        notes.append(
            f"Re-run because other processes used more than {QUIET_LIMIT:.0%} of a core during "
            f"them (their share in brackets): {', '.join(report.reruns)}."
        )
    if noisy:
        notes.append(f"Still busy after {QUIET_TRIES} tries: {', '.join(noisy)}.")
    return notes


def ceiling_notes(report: Report) -> list[str]:
    """Says when the emulator, not the proxy, bounds a cell: its core is shared with wrk."""
    notes = []
    for mode, target in (("json", 2500), ("stream", 1600)):
        direct = report.cell("direct", mode, 64)
        if direct is not None and direct.rps < target:
            notes.append(
                f"Direct to the emulator, {mode} at c=64 tops out at {direct.rps:,.0f} req/s "
                f"with core {LOAD_CORE} {direct.load_core_busy:.0%} busy (emulator + wrk): "
                f"the ≥ {target:,} target cannot be shown through any proxy in this layout. "
                "The 'capacity' column (1 / proxy CPU per request) is the proxy's own ceiling."
            )
    return notes


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s cells, 5,000-request soak")
    parser.add_argument("--seconds", type=float, help="measured seconds per cell")
    parser.add_argument("--soak", type=int, help="soak length in requests (0: none)")
    parser.add_argument(
        "--transports", default="aiohttp,httpcore", help="gateway upstream transports to run"
    )
    parser.add_argument(
        "--floors",
        default="httpx-aiohttp,aiohttp",
        help="passthrough floors to run (bench/passthrough.py clients; '' for none)",
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even if there")
    parser.add_argument(
        "--state",
        action="store_true",
        help="only the gateway-key runs (budget + rate limit on every call): state in memory"
        " vs Redis; results in bench/results/overhead-state.*",
    )
    parser.add_argument("--setup-litellm", action="store_true", help="install LiteLLM, exit")
    parser.add_argument(
        "--body",
        default=FILLER,
        help="the request body: 'filler' (a 1 KB one-line question, the default) or a"
        " recorded one, claude-code-first-turn (~116 KB) or claude-code-late-turn (300 KB+);"
        " results in bench/results/overhead-<body>.*",
    )
    parser.add_argument(
        "--no-quiet",
        action="store_true",
        help="run each cell once without waiting for a quiet machine (a smoke run: the"
        " numbers are not comparable)",
    )
    args = parser.parse_args(argv)
    if args.setup_litellm:
        return setup_litellm()
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        log("needs 2 cores and taskset (util-linux) to pin gateway and load apart")
        return 2
    if shutil.which("wrk") is None:
        log("needs wrk: apt-get install -y wrk")
        return 2
    if args.body != FILLER and args.body not in recorded_bodies():
        log(f"--body: {args.body!r} is not one of {[FILLER, *recorded_bodies()]}")
        return 2
    bodies = body_pair(args.body)
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    soak_requests = args.soak if args.soak is not None else (5_000 if args.quick else 100_000)
    transports = [t for t in args.transports.split(",") if t]
    floors = [f for f in args.floors.split(",") if f]
    os.sched_setaffinity(0, {LOAD_CORE})  # this process runs the probe: core 0 with the load
    command = " ".join(
        [".venv/bin/python bench/overhead.py", *(argv if argv is not None else sys.argv[1:])]
    )
    report = Report(
        args={
            "seconds": seconds,
            "warmup": (1.0 if seconds < 4 else 2.0),
            "soak": soak_requests,
            "body": args.body,
            "body_bytes": f"{len(bodies[0]):,} JSON / {len(bodies[1]):,} stream",
        },
        environment=environment(),
    )
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp:
        workdir = Path(tmp)
        with running(start_emulator(workdir)) as emulator:
            warmup = 1.0 if seconds < 4 else 2.0
            bench = Bench(emulator, seconds, warmup, workdir, report, bodies, not args.no_quiet)
            bench.measure("direct", emulator, None)
            if args.state:
                measure_state(bench, emulator, transports[0], workdir)
                floors, transports, args.no_litellm, soak_requests = [], [], True, 0
            for client in floors:
                with running(start_floor(client, emulator, workdir)) as floor:
                    bench.measure(f"floor-{client}", floor, floor)
            for transport in transports:
                with running(start_gateway(transport, emulator, workdir)) as gateway:
                    bench.measure(f"gateway-{transport}", gateway, gateway)
                    if soak_requests and transport == transports[0]:
                        log(f"  soak: {soak_requests:,} requests")
                        report.soaks.append(bench.soak(transport, gateway, soak_requests))
            version = litellm_version()
            if args.no_litellm:
                pass
            elif version is None:
                report.notes.append(
                    "LiteLLM row skipped: not installed (run with --setup-litellm first)."
                )
            else:
                try:
                    with running(start_litellm(emulator, workdir)) as litellm:
                        log(f"LiteLLM {version}")
                        bench.measure("litellm", litellm, litellm)
                except RuntimeError as error:
                    report.notes.append(f"LiteLLM row skipped: {error}")
    report.notes += ceiling_notes(report) + quiet_notes(report)
    text = markdown(report, command)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "overhead-state" if args.state else "overhead"
    name += "" if args.body == FILLER else f"-{args.body}"
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
    return 0


def measure_state(bench: Bench, emulator: Server, transport: str, workdir: Path) -> None:
    """The gateway passing provider keys through, then with a gateway key whose budget and
    rate limits are checked before and charged after every call: in memory, then on Redis."""
    with running(start_gateway(transport, emulator, workdir)) as gateway:
        bench.measure(f"gateway-{transport}", gateway, gateway)
    common = {
        "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": "sk-ant-bench-provider-key",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    memory = {**common, "GATEWAY_STATE__KEYS_FILE": str(workdir / "keys.json")}
    with redis_server(workdir) as redis:
        shared = {**common, "GATEWAY_STATE__REDIS_URL": f"redis://{HOST}:{redis.port}/0"}
        for label, state in (("memory", memory), ("redis", shared)):
            key = gateway_key(state)
            name = f"gateway-{transport}-keys-{label}"
            with running(start_gateway(transport, emulator, workdir, state, name)) as gateway:
                gateway.api_key = key
                bench.measure(name, gateway, gateway)


if __name__ == "__main__":
    raise SystemExit(main())
