"""The recording proxy (tests/support/recording_proxy.py) in front of the real emulator."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.harness import free_port, server_process
from tests.support.record import REPO

KEY = "sk-ant-proxy-test-secret-0000"
TOOL = {
    "name": "lookup",
    "description": "Look an order up.",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
}


def proxy(emulator_url: str, log: Path, *flags: str) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "tests.support.recording_proxy", "--upstream", emulator_url]
    with server_process(
        [*command, "--port", str(port), "--out", str(log), *flags],
        f"http://127.0.0.1:{port}",
        "/emulator/state",
        env={"PYTHONPATH": str(REPO)},
    ) as url:
        yield url


@pytest.fixture
def recorded(emulator_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "log.jsonl"
    yield from ((url, log) for url in proxy(emulator_url, log))


def entries(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text("utf-8").splitlines()]


def posted(log: Path) -> dict[str, object]:
    """The logged POST (the request line: written before the response is relayed)."""
    [request] = [e for e in entries(log) if e.get("method") == "POST"]
    return request


def ended(log: Path, seq: object) -> dict[str, object]:
    """The exchange's closing line, written once the relayed response has ended: the client
    may see its last byte first, so wait for it (bounded)."""
    deadline = time.monotonic() + 20
    while True:
        found = [e for e in entries(log) if e.get("seq") == seq and "method" not in e]
        if found or time.monotonic() > deadline:
            assert found, "the response's end was never logged"
            return found[0]
        time.sleep(0.02)


def test_an_exchange_is_logged_without_its_credential(recorded: tuple[str, Path]) -> None:
    url, log = recorded
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "REPLY: hello there"}],
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "x-stainless-retry-count": "0"}
    response = httpx.post(url + "/v1/messages", json=body, headers=headers, timeout=30)
    assert response.status_code == 200
    assert "hello there" in "".join(
        json.loads(line[6:]).get("delta", {}).get("text", "")
        for line in response.text.splitlines()
        if line.startswith("data: ")
    )
    request = posted(log)
    assert request["body"] == body
    assert request["status"] == 200
    assert ["x-stainless-retry-count", "0"] in request["headers"]  # type: ignore[operator]
    assert KEY not in log.read_text("utf-8")
    assert ended(log, request["seq"])["response_bytes"] == len(response.content)


def test_end_tool_loops_changes_only_what_goes_upstream(emulator_url: str, tmp_path: Path) -> None:
    """After a tool's output the emulator is asked for no tool (it would call it
    forever); the log keeps what the client sent."""
    log = tmp_path / "log.jsonl"
    body = {
        "model": "gpt-5.4",
        "tools": [{"type": "function", **TOOL}],
        "input": [
            {"role": "user", "content": "Where is it?\nUSE_TOOL: lookup"},
            {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "shipped"},
        ],
    }
    for url in proxy(emulator_url, log, "--end-tool-loops"):
        response = httpx.post(
            url + "/v1/responses", json=body, headers={"authorization": "Bearer k"}, timeout=30
        )
        assert response.status_code == 200
        assert response.json()["output"][-1]["type"] == "message"
        assert posted(log)["body"] == body
