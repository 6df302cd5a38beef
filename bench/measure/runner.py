"""Filling the cells: every wrk and probe cell for one path (direct to the emulator or
through a proxy) and body, each run when the machine is quiet, and the soak."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.load import Probe, run_wrk, wrk_command, wrk_result, wrk_script
from harness.process import children_cpu_seconds, cpu_seconds, foreign_cpu_seconds, rss_mb
from harness.progress import log
from harness.proxies import Server
from harness.stats import percentile

from measure.bodies import Pair, route
from measure.cells import Cell, ProbeCell, Report, Soak

CONCURRENCY = (1, 10, 64)
PROBE_CONCURRENCY = (1, 10)
# --summary: the cells of the per-body table (added latency at c=1, throughput at c=64).
SUMMARY_CELLS = (("json", 1), ("json", 64), ("stream", 64))
QUIET_LIMIT = 0.05  # other processes' CPU during a cell, in cores, above which it is re-run
QUIET_TRIES = 5
QUIET_WINDOW_S = 3.0  # before a cell, this long with other processes quiet
QUIET_WAIT_S = 300.0  # at most

CellT = TypeVar("CellT", Cell, ProbeCell)


@dataclass(frozen=True)
class Slot:
    """Where a cell belongs in the report."""

    path: str
    mode: str
    concurrency: int
    body: str

    @property
    def label(self) -> str:
        return f"{self.path} {self.body} {self.mode} c={self.concurrency}"


@dataclass
class Bench:
    emulator: Server
    seconds: float
    warmup_s: float
    workdir: Path
    report: Report
    quiet: bool = True  # wait for, and re-run cells until, a quiet machine
    summary: bool = False  # only SUMMARY_CELLS, no probes

    def measure(
        self, path: str, server: Server, proxy: Server | None, body: str, pair: Pair
    ) -> None:
        """Every wrk cell and probe cell for one path and body (the JSON and the stream form
        of it: one body each, or a session's turns sent in order), then the proxy's RSS."""
        log(f"{path} :{server.port} {body}" + (f" (pid {proxy.proc.pid})" if proxy else ""))
        for mode, payload in zip(("json", "stream"), pair, strict=True):
            script = wrk_script(server, payload, path=route(body))
            for concurrency in CONCURRENCY:
                if not self.summary or (mode, concurrency) in SUMMARY_CELLS:
                    self._wrk_cell(Slot(path, mode, concurrency, body), server, proxy, script)
            probes = PROBE_CONCURRENCY if mode == "stream" else (1,)
            for concurrency in () if self.summary else probes:
                self._probe_cell(Slot(path, mode, concurrency, body), server, payload)
        if proxy is not None:
            self.report.rss_after_mb[path] = rss_mb(proxy.proc.pid)

    def _quietly(self, label: str, run: Callable[[], CellT]) -> CellT:
        """Runs a cell when no other process is busy, and again (up to QUIET_TRIES times in
        all) if one was busy during it: a shared core would skew every number in it. Keeps
        the quietest try."""
        tries: list[CellT] = []
        for _ in range(QUIET_TRIES if self.quiet else 1):
            if self.quiet:
                wait_for_quiet()
            before, began = foreign_cpu_seconds(), time.monotonic()
            cell = run()
            cell.foreign_cores = (foreign_cpu_seconds() - before) / (time.monotonic() - began)
            tries.append(cell)
            if cell.foreign_cores <= QUIET_LIMIT or not self.quiet:
                break
            self.report.reruns.append(f"{label} ({cell.foreign_cores:.0%})")
            log(f"  {label}: other processes used {cell.foreign_cores:.0%} of a core; again")
        return min(tries, key=lambda cell: cell.foreign_cores)

    def _wrk_cell(self, slot: Slot, server: Server, proxy: Server | None, script: str) -> None:
        cell = self._quietly(slot.label, lambda: self._wrk_run(slot, server, proxy, script))
        self.report.cells.append(cell)
        cpu = f"{cell.proxy_cpu_ms_per_req:.3f} ms CPU/req" if proxy else ""
        log(
            f"  {slot.path:19} {slot.mode:6} c={slot.concurrency:<3} {cell.rps:8.0f} req/s  "
            f"p50 {cell.p50_ms:7.3f} ms  p99 {cell.p99_ms:8.3f} ms  errors {cell.errors}  {cpu}"
        )

    def _wrk_run(self, slot: Slot, server: Server, proxy: Server | None, script: str) -> Cell:
        run_wrk(server, script, slot.concurrency, self.warmup_s, self.workdir)
        proxy_before = cpu_seconds(proxy.proc.pid) if proxy else 0.0
        emulator_before = cpu_seconds(self.emulator.proc.pid)
        result = run_wrk(server, script, slot.concurrency, self.seconds, self.workdir)
        emulator_cpu = cpu_seconds(self.emulator.proc.pid) - emulator_before
        proxy_cpu = cpu_seconds(proxy.proc.pid) - proxy_before if proxy else None
        requests = max(result.requests, 1)
        return Cell(
            path=slot.path,
            mode=slot.mode,
            concurrency=slot.concurrency,
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
            body=slot.body,
        )

    def _probe_cell(self, slot: Slot, server: Server, payload: Sequence[bytes]) -> None:
        probe = self._quietly(slot.label + " probe", lambda: self._probe_run(slot, server, payload))
        self.report.probes.append(probe)
        log(
            f"  {slot.path:19} {slot.mode:6} c={slot.concurrency:<3} probe: TTFB p50 "
            f"{probe.ttfb_p50_ms:.3f} ms  first delta p50 {probe.first_delta_p50_ms:.3f} ms"
            f"  total p50 {probe.total_p50_ms:.3f} ms  ({probe.samples} samples)"
        )

    def _probe_run(self, slot: Slot, server: Server, payload: Sequence[bytes]) -> ProbeCell:
        timings = Probe(server, payload, route(slot.body)).run(
            slot.concurrency, self.warmup_s, self.seconds
        )
        ok = [t for t in timings if t.status == 200]
        deltas = [t.first_delta_s for t in ok if t.first_delta_s is not None]
        return ProbeCell(
            path=slot.path,
            mode=slot.mode,
            concurrency=slot.concurrency,
            samples=len(ok),
            errors=len(timings) - len(ok),
            ttfb_p50_ms=percentile([t.ttfb_s for t in ok], 50) * 1e3,
            ttfb_p99_ms=percentile([t.ttfb_s for t in ok], 99) * 1e3,
            first_delta_p50_ms=percentile(deltas, 50) * 1e3,
            total_p50_ms=percentile([t.total_s for t in ok], 50) * 1e3,
            total_p99_ms=percentile([t.total_s for t in ok], 99) * 1e3,
            body=slot.body,
        )

    def soak(self, transport: str, gateway: Server, pair: Pair, requests: int) -> Soak:
        """`requests` JSON and stream calls in turn at c=64 (a session's: its JSON turns, then
        its streaming ones, cycling); the gateway's RSS is read at
        every tenth of them (wrk's script reports progress, and is stopped at the end)."""
        script = wrk_script(gateway, [*pair[0], *pair[1]], stop_after=requests)
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
        return Soak(transport, result.requests, result.seconds, result.errors, samples)


def wait_for_quiet() -> None:
    """Until processes outside this run's tree have been quiet for QUIET_WINDOW_S (at most
    QUIET_WAIT_S)."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline:
        before = foreign_cpu_seconds()
        time.sleep(QUIET_WINDOW_S)
        if foreign_cpu_seconds() - before <= QUIET_LIMIT * QUIET_WINDOW_S:
            return
