"""`gateway serve | sleep 3600`: a stdout nobody reads must never stall the gateway.

The call log goes to stdout, a pipe this test never reads: once the pipe's buffer and the
call log's queue are full, lines are dropped and counted, and every request (and /healthz)
is still answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import httpx

from bench.harness import free_port, wait_ready

CALLS = 500
TIMEOUT = httpx.Timeout(20.0)  # a stalled gateway fails the test instead of hanging it


def test_a_stdout_nobody_reads_never_stalls_the_gateway(emulator_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": emulator_url,
        "GATEWAY_METERING__CALL_LOG": "stdout",
        "GATEWAY_METERING__CALL_LOG_QUEUE_BYTES": "16384",
    }
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(process, url + "/healthz")
            body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}
            headers = {"x-api-key": "sk-ant-stall", "anthropic-version": "2023-06-01"}
            with httpx.Client(base_url=url, timeout=TIMEOUT, headers=headers) as client:
                for _ in range(CALLS):
                    client.post("/v1/messages", json=body)  # any status: it was answered
                assert client.get("/healthz").status_code == 200
            assert dropped(url) > 0
        finally:
            process.kill()
            process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


def dropped(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=TIMEOUT).text.splitlines():
        if line.startswith("gateway_call_log_dropped_total "):
            return float(line.split()[1])
    raise AssertionError("gateway_call_log_dropped_total is not exported")
