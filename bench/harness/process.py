"""Processes the benchmarks and the tests start: run one until a block ends, pin it to a core,
and read its CPU time and memory from /proc."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")
Ready = str | Callable[[], bool]  # a URL that answers 2xx-4xx when up, or a check of our own
# How long a server may take to answer at start: ~1-2 s on an idle machine, but a 2-core
# machine running other suites and benchmarks has taken over 20 s. A wait, not a measure.
START_TIMEOUT_S = 90.0


def pinned(core: int, command: Sequence[str]) -> list[str]:
    """`command` on one CPU core; taskset execs it, so the pid is the command's own."""
    return ["taskset", "-c", str(core), *command]


def is_ready(ready: Ready) -> bool:
    if callable(ready):
        return ready()
    try:
        return httpx.get(ready, timeout=1).status_code < 500
    except httpx.TransportError:
        return False


def wait_ready(
    process: subprocess.Popen[bytes],
    ready_url: Ready,
    timeout_s: float = START_TIMEOUT_S,
    log: IO[bytes] | None = None,
) -> None:
    """Returns once `ready_url` answers 2xx-4xx (or the check returns true); raises if
    `process` exits first (with what it wrote to `log`) or `timeout_s` passes."""
    args = process.args
    command = " ".join(map(str, args)) if isinstance(args, list) else str(args)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            output = ""
            if log is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
            raise RuntimeError(f"{command} exited early:\n{output}")
        if is_ready(ready_url):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{command} did not become ready")
        time.sleep(0.05)


@contextmanager
def started(
    command: list[str],
    ready: Ready,
    env: dict[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `command` until the block ends; yields its process once `ready` answers (within
    `timeout_s`), then terminates it (kills it if it has not exited 10 s later). If the block
    fails, the tail of the server's log goes to stderr, where pytest shows it with the failure."""
    # A file, not a pipe: a server that logs a lot must never block on a full pipe.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this statement; closed below
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(process, ready, timeout_s, log)
        try:
            yield process
        except Exception:  # the block failed (a test's assertion): show what the server said
            sys.stderr.write(_tail(log, command))
            raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(log: IO[bytes], command: list[str], limit: int = 64 * 1024) -> str:
    """The last `limit` bytes a running server wrote to `log`, headed by its command (read
    with pread: the server shares the file's offset)."""
    size = os.fstat(log.fileno()).st_size
    tail = os.pread(log.fileno(), limit, max(0, size - limit)).decode(errors="replace")
    return f"--- {' '.join(command)}: its log's last {limit} bytes ---\n{tail}\n"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/PID/status, in KiB (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def rss_mb(pid: int) -> float:
    """Resident memory now, in MB (10^6 bytes)."""
    return rss_kib(pid) * 1024 / 1e6


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    return sum(cpu_times(pid))


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def minor_faults(pid: int) -> int:
    """Page faults served without I/O so far (all threads; a page first touched, say, after
    the allocator took it from the kernel), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])


def children_cpu_seconds() -> float:
    """CPU time of this process's children that have exited (as wrk runs do)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def foreign_cpu_seconds() -> float:
    """CPU time used so far by every process outside this process's tree — another workload
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
