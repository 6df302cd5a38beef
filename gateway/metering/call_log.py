"""The call log: one JSON line per model call, for operators. Never any prompt text.

To stdout (the default: a container's log), to a file (appended), or off.

The event loop never writes: a line goes to a queue bounded in bytes, which a thread drains
into the output (a batch per write). An output that does not keep up (`gateway serve |
sleep 3600`, a full disk) fills the queue, and lines past it are dropped and counted
(gateway_call_log_dropped_total) instead of every request waiting on the output. At
shutdown, `close` gives the thread a bounded time to write what is queued.

The thread is woken by the first line into an empty queue, then lets lines gather for up to
`LINGER_S` (or until `BATCH_BYTES` are waiting) before it writes them: woken and writing for
every line, it cost ~40-100 µs of CPU per call at 1 KB (the wake, the switch, the syscall), a
tenth of the whole call; batched, that is paid once per batch.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

import orjson

from gateway.metering.calls import CallRecord, Metered

DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024
LINGER_S = 0.05  # a line reaches the output this long after its call, at most (unstalled)
BATCH_BYTES = 64 * 1024  # or as soon as this much is waiting (half the queue, if smaller)


class CallLog:
    def __init__(
        self,
        out: IO[bytes] | None,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        on_drop: Callable[[], None] | None = None,  # a line dropped: the queue was full
        *,
        owned: bool = False,  # `out` was opened for the log: closed with it
        linger_s: float = LINGER_S,
    ) -> None:
        self._out = out
        self._owned = owned
        self._max_queue_bytes = max_queue_bytes
        self._on_drop = on_drop
        self._lines: deque[bytes] = deque()
        self._queued = 0  # bytes queued, and being written
        self._waiting = 0  # bytes queued, not yet taken by the writer
        self._batch_bytes = min(BATCH_BYTES, max_queue_bytes // 2)
        self._linger_s = linger_s
        self._lock = threading.Lock()  # taken as is by `write`: the Condition's own is Python
        self._ready = threading.Condition(self._lock)
        self._closing = False
        self.dropped = 0
        self._thread: threading.Thread | None = None
        if out is not None:
            # A daemon: a writer stuck on a stalled output must not keep the process alive.
            self._thread = threading.Thread(target=self._drain, name="call-log", daemon=True)
            self._thread.start()

    @classmethod
    def open(
        cls,
        target: str,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        on_drop: Callable[[], None] | None = None,
    ) -> CallLog:
        """`stdout`, `off`, or a file path to append to."""
        if target == "off":
            return cls(None)
        if target == "stdout":
            # The file descriptor itself, unbuffered: sys.stdout's buffer has a lock that a
            # writer stuck on a stalled pipe would hold at interpreter exit.
            out: IO[bytes] = open(sys.stdout.fileno(), "wb", buffering=0, closefd=False)  # noqa: SIM115
        else:
            out = open(target, "ab", buffering=0)  # noqa: SIM115 - held for the process' life
        return cls(out, max_queue_bytes, on_drop, owned=True)

    def write(self, call: CallRecord, metered: Metered) -> None:
        if self._out is None:
            return
        line = self._line(call, metered)
        size = len(line)
        with self._lock:
            fits = self._queued + size <= self._max_queue_bytes and not self._closing
            if fits:
                # The writer waits for a first line, then for a batch: woken for those only.
                if not self._lines or self._waiting < self._batch_bytes <= self._waiting + size:
                    self._ready.notify()
                self._lines.append(line)
                self._queued += size
                self._waiting += size
        if not fits:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()

    def close(self, timeout_s: float) -> bool:
        """Stops taking lines and waits up to `timeout_s` for the queued ones to be written;
        False if they were not."""
        if self._thread is None:
            return True
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _drain(self) -> None:
        assert self._out is not None
        while True:
            with self._ready:
                while not self._lines and not self._closing:
                    self._ready.wait()
                self._ready.wait_for(self._batched, self._linger_s)
                if not self._lines:
                    if self._owned:
                        self._out.close()
                    return
                batch = b"".join(self._lines)
                lines = len(self._lines)
                self._lines.clear()
                self._waiting = 0
            try:
                _write_all(self._out, batch)
            except (OSError, ValueError):  # a closed pipe or file: those lines are lost
                self.dropped += lines
                if self._on_drop is not None:
                    for _ in range(lines):
                        self._on_drop()
            with self._ready:
                self._queued -= len(batch)

    def _batched(self) -> bool:
        return self._closing or self._waiting >= self._batch_bytes

    @staticmethod
    def _line(call: CallRecord, metered: Metered) -> bytes:
        # The record unpacked in one step: each field read by name is a descriptor's call.
        (
            request_id,
            provider,
            step,
            model_requested,
            model_used,
            status,
            duration_s,
            ttft_s,
            usage,
            rewrites,
            _,
            cache,
            coalesced,
            _,
            started_at,
            tier,
            attempts,
            budget_breaches,
            key,
            _,
            _,
        ) = call
        if usage is None:
            tokens_in = tokens_out = cache_read = cache_write_5m = cache_write_1h = 0
        else:
            tokens_in, tokens_out = usage.input, usage.output
            cache_read, cache_write_5m = usage.cache_read, usage.cache_write_5m
            cache_write_1h = usage.cache_write_1h
        line = {
            "request_id": request_id,
            "time": iso_time(started_at),
            "provider": provider,
            "model_requested": model_requested,
            "model_used": model_used,
            "step": step,
            "tier": tier,
            "key": key,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cache_read_tokens": cache_read,
            "cache_write_5m_tokens": cache_write_5m,
            "cache_write_1h_tokens": cache_write_1h,
            "latency_ms": round(duration_s * 1000, 3),
            "ttft_ms": None if ttft_s is None else round(ttft_s * 1000, 3),
            "cost_usd": round(metered.cost_usd, 8),
            "rewrites": rewrites,
            "findings": metered.findings,
            "cache_miss_cause": None if cache is None else cache.cause,
            "coalesced": coalesced,
            "status": status,
            "budget_breaches": budget_breaches,
            "attempts": [
                {
                    "model": attempt.model,
                    "status": attempt.status,
                    "latency_ms": round(attempt.duration_s * 1000, 3),
                    "hedge": attempt.hedge,
                    "relayed": attempt.relayed,
                }
                for attempt in attempts
            ]
            if len(attempts) > 1
            else [],
        }
        return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


_second: list[tuple[int, str]] = [(-1, "")]  # the last whole second formatted, and its text


def iso_time(at: float) -> str:
    """`datetime.fromtimestamp(at, UTC).isoformat()`, the date and time of a second formatted
    once: calls arrive many a second, and the datetime's formatting is most of a line's cost."""
    # As fromtimestamp rounds: the fraction of the second alone, to microseconds, half to even.
    # int() truncates as modf() does, and a float less its integral part is exact: modf's pair.
    second = int(at)
    micro = round((at - second) * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    last, text = _second[0]
    if second != last:
        text = dt.datetime.fromtimestamp(second, dt.UTC).isoformat()[:-6]
        _second[0] = (second, text)
    return f"{text}.{micro:06d}+00:00" if micro else f"{text}+00:00"


def _write_all(out: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written if written is not None else len(view) :]
    out.flush()
