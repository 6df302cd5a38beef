"""`gateway demo`, as `make run` runs it: a session through both, a table, then it serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx

from bench.harness import free_port


def test_demo_shows_the_saving_then_keeps_serving() -> None:
    gateway_port, emulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__PORT": str(gateway_port),
        "GATEWAY_EMULATOR__PORT": str(emulator_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while not any("Ctrl-C stops" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        output = "".join(lines)
        saved = re.search(r"Tollgate saved (\d+)%", output)
        assert saved is not None, output
        assert int(saved.group(1)) >= 30
        hit = re.search(r"cache hit ratio\s+(\d+)%\s+(\d+)%", output)
        assert hit is not None
        assert (int(hit.group(1)), int(hit.group(2)) > 50) == (0, True)
        assert httpx.get(f"http://127.0.0.1:{gateway_port}/healthz").status_code == 200
        # The OpenAI wire is served by the demo's emulator too (on any port): Codex's default.
        answer = httpx.post(
            f"http://127.0.0.1:{gateway_port}/v1/responses",
            headers={"authorization": "Bearer any-key"},
            json={"model": "gpt-6.2-sol", "input": "REPLY: hi"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["output"][0]["content"][0]["text"] == "hi"
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()
    # The demo's emulator and gateway stop with it.
    for port in (gateway_port, emulator_port):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"a server of the demo outlived it on port {port}")
