"""The real Claude Code and Codex CLIs through `gateway serve` in front of the emulator.

Where the installed clients' own bytes matter, the fixtures' scrubbed shape is not enough:
these run `claude -p` and `codex exec` themselves, each asked for a tool call, with HOME in
a temporary folder and every URL on loopback. Skipped where the CLIs are not installed
(`.ci/run` installs them into .cache/clients; `CLIENTS_BIN` points elsewhere). A recording
proxy between the gateway and the emulator shows what went upstream; for Codex it also
ends the tool loop the emulator would otherwise never leave.

Each runs twice: with an explicit model, and with the client's default (no `--model`, no
`model` in config.toml) as a newcomer's first try would — Claude Code 2.1.197's default
`claude-opus-4-8` sends mid-conversation system messages, Codex 0.171.0's default
`gpt-6.2-sol` sends the "responses-lite" shape (its tools in an `additional_tools` input
item, the shell a custom tool `exec` in the namespace `functions`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import free_port, server_process
from tests.integration.servers import gateway
from tests.support.record import CLAUDE_OFFLINE, CLIENTS, REPO, run_client

CLAUDE_MODEL = "claude-sonnet-4-6"
CODEX_MODEL = "gpt-5.4"
CLAUDE_DEFAULT = "claude-opus-4-8"  # Claude Code 2.1.197's, when no --model is given
CODEX_DEFAULT = "gpt-6.2-sol"  # Codex 0.171.0's, when config.toml names no model
KEY = "sk-ant-e2e-00000000000000000000"


def _installed(name: str) -> bool:
    return (CLIENTS / name).exists()


@pytest.fixture(scope="module")
def upstream_log(
    tmp_path_factory: pytest.TempPathFactory, emulator_url: str
) -> Iterator[tuple[str, Path]]:
    """The gateway's URL, and the log of what it sent upstream."""
    log = tmp_path_factory.mktemp("e2e") / "upstream.jsonl"
    log.touch()
    port = free_port()
    proxy = [
        sys.executable,
        "-m",
        "tests.support.recording_proxy",
        "--port",
        str(port),
        "--out",
        str(log),
        "--end-tool-loops",
    ]
    with (
        server_process(
            [*proxy, "--upstream", emulator_url],
            f"http://127.0.0.1:{port}",
            "/emulator/state",
            env={"PYTHONPATH": str(REPO)},  # `tests` importable from any working directory
        ) as proxy_url,
        gateway(proxy_url) as gateway_url,
    ):
        yield gateway_url, log


def _calls(log: Path, path: str) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    return [e for e in entries if "method" in e and str(e["path"]).startswith(path)]


def _env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }


@pytest.mark.skipif(not _installed("claude"), reason="Claude Code is not installed")
@pytest.mark.parametrize("model", [CLAUDE_MODEL, None], ids=["explicit", "default"])
def test_claude_code_runs_a_tool_through_the_gateway(
    upstream_log: tuple[str, Path], tmp_path: Path, model: str | None
) -> None:
    gateway_url, log = upstream_log
    before = len(_calls(log, "/v1/messages"))
    env = _env(
        tmp_path / "home", ANTHROPIC_BASE_URL=gateway_url, ANTHROPIC_API_KEY=KEY, **CLAUDE_OFFLINE
    )
    prompt = "List the files.\nUSE_TOOL: Bash"
    command = [str(CLIENTS / "claude"), "-p", "--dangerously-skip-permissions"]
    chosen = ["--model", model] if model else []
    output = run_client([*command, *chosen, prompt], tmp_path, env)
    assert output.strip()  # the answer after the tool result
    calls = _calls(log, "/v1/messages")[before:]
    assert len(calls) >= 2  # the tool call, then the answer after its result
    last = calls[-1]["body"]
    assert isinstance(last, dict)
    assert last["model"] == (model or CLAUDE_DEFAULT)
    blocks = [b for m in last["messages"] for b in m["content"] if isinstance(m["content"], list)]
    assert any(b.get("type") == "tool_result" for b in blocks)
    if model is None:  # the default model's mid-conversation system reminders
        assert "system" in [m["role"] for m in last["messages"]]


@pytest.mark.skipif(not _installed("codex"), reason="Codex is not installed")
@pytest.mark.parametrize(
    ("model", "tool", "output_item"),
    [
        (CODEX_MODEL, "exec_command", "function_call_output"),
        (None, "exec", "custom_tool_call_output"),  # responses-lite: a custom tool
    ],
    ids=["explicit", "default"],
)
def test_codex_runs_a_tool_through_the_gateway(
    upstream_log: tuple[str, Path], tmp_path: Path, model: str | None, tool: str, output_item: str
) -> None:
    gateway_url, log = upstream_log
    before = len(_calls(log, "/v1/responses"))
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        (f'model = "{model}"\n' if model else "") + 'model_provider = "tollgate"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "workspace-write"\n\n'
        "[model_providers.tollgate]\n"
        'name = "Tollgate"\n'
        f'base_url = "{gateway_url}/v1"\n'
        'env_key = "TOLLGATE_API_KEY"\n'
        'wire_api = "responses"\n'
    )
    env = _env(home, TOLLGATE_API_KEY=KEY)
    prompt = f"List the files.\nREPLY: listed them\nUSE_TOOL: {tool}"
    command = [str(CLIENTS / "codex"), "exec", "--skip-git-repo-check", prompt]
    assert "listed them" in run_client(command, tmp_path, env)
    calls = _calls(log, "/v1/responses")[before:]
    assert len(calls) >= 2
    last = calls[-1]["body"]
    assert isinstance(last, dict)
    assert last["model"] == (model or CODEX_DEFAULT)
    assert any(item.get("type") == output_item for item in last["input"])
