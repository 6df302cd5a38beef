"""Peak memory of `gateway serve` against a misbehaving upstream.

For each case a fresh `gateway serve` (default limits, no emulator, call log off) relays one
call to the hostile upstream of tests/integration/hostile_upstream.py, while the gateway's
resident set size is sampled from /proc every 10 ms; the case's growth is the peak RSS
(the largest sample, or VmHWM) minus the RSS after one warm-up call.

    .venv/bin/python bench/hostile_upstream.py            # 500 MB JSON, 200 MB SSE cases
    .venv/bin/python bench/hostile_upstream.py --mb 50    # every case at 50 MB

Linux only (/proc). The client reads every byte the gateway sends, so nothing is held back
by a slow reader: what the gateway holds is its own doing.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import HOST, free_port, rss_kib, started

from tests.integration.hostile_upstream import HostileUpstream, hostile_upstream

MIB = 1024 * 1024
HEADERS = {"x-api-key": "sk-ant-bench", "anthropic-version": "2023-06-01"}
BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}
# (mode, stream, MB at the default size)
CASES = [
    ("huge_json", False, 500),
    ("huge_chunked_json", False, 500),
    ("no_line_ends_sse", True, 200),
    ("huge_event_sse", True, 200),
]


def run_case(upstream: HostileUpstream, mode: str, stream: bool, size: int) -> dict[str, object]:
    port = free_port()
    env = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream.url,
        "GATEWAY_PROVIDERS__OPENAI__BASE_URL": upstream.url,
        "GATEWAY_ROUTING__REFRESH_LIFECYCLE": "false",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    url = f"http://{HOST}:{port}"
    # `gateway serve` with one worker serves in-process: its pid is the server's.
    with started(command, url + "/healthz", env) as process:
        pid = process.pid
        upstream.mode = "ok_json"
        httpx.post(url + "/v1/messages", json=BODY, headers=HEADERS, timeout=30).raise_for_status()
        time.sleep(0.5)
        baseline = rss_kib(pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        upstream.mode, upstream.size, upstream.seconds = mode, size, 300
        began = time.monotonic()
        received = 0
        with httpx.stream(
            "POST",
            url + "/v1/messages",
            json={**BODY, "stream": stream},
            headers=HEADERS,
            timeout=httpx.Timeout(300),
        ) as response:
            for chunk in response.iter_raw(MIB):
                received += len(chunk)
        elapsed = time.monotonic() - began
        done.set()
        sampler.join()
        peak = max(peak, rss_kib(pid, "VmHWM"))
        return {
            "case": mode,
            "sent_mb": size // MIB,
            "status": response.status_code,
            "relayed_mb": round(received / MIB, 1),
            "baseline_mb": round(baseline / 1024, 1),
            "peak_growth_mb": round((peak - baseline) / 1024, 1),
            "seconds": round(elapsed, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, help="every case at this size, in MiB")
    parser.add_argument("--cases", help="comma-separated modes (default: all)")
    args = parser.parse_args()
    wanted = set(args.cases.split(",")) if args.cases else None
    rows = []
    with hostile_upstream() as upstream:
        for mode, stream, mb in CASES:
            if wanted is None or mode in wanted:
                row = run_case(upstream, mode, stream, (args.mb or mb) * MIB)
                print(row, file=sys.stderr, flush=True)
                rows.append(row)
    print("| case | sent MB | status | relayed MB | baseline RSS MB | peak growth MB | s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(value) for value in row.values()) + " |")


if __name__ == "__main__":
    main()
