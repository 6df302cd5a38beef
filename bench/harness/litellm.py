"""LiteLLM's proxy as a benchmark's comparison: installed once into its own virtualenv
(.cache/litellm-venv, never the project's), optional — a run without it skips its rows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from .ports import HOST, free_port
from .process import pinned
from .proxies import GATEWAY_CORE, REPO, Server, serving

LITELLM_VENV = REPO / ".cache" / "litellm-venv"
LITELLM_KEY = "sk-tollgate-bench-0123456789abcdef0123456789abcdef"  # local master key only


def setup_litellm() -> int:
    """Installs LiteLLM's proxy in its own virtualenv; the exit status."""
    python = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    began = time.monotonic()
    try:
        subprocess.run([python, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=300)
        subprocess.run([*pip, "litellm[proxy]"], check=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"LiteLLM setup failed after {time.monotonic() - began:.0f} s: {error}")
        return 1
    print(f"LiteLLM installed in {LITELLM_VENV} ({time.monotonic() - began:.0f} s)")
    return 0


def litellm_version() -> str | None:
    """The installed LiteLLM's version, or None when it is not installed."""
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        return None
    done = subprocess.run(
        [
            str(LITELLM_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def litellm_server(
    upstream: Server, workdir: Path, models: Sequence[str] = ("claude-haiku-4-5",)
) -> AbstractContextManager[Server]:
    """LiteLLM's proxy (one worker, no database, default logging) serving `models` from
    `upstream`, Claude models on its /v1/messages route and the others (OpenAI's) on
    /v1/responses, pinned like the gateway."""
    port = free_port()
    config = workdir / "litellm.yaml"
    entries = "".join(
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        + (
            f"      model: anthropic/{model}\n      api_base: {upstream.base_url}\n"
            if model.startswith("claude")
            else f"      model: openai/{model}\n      api_base: {upstream.base_url}/v1\n"
        )
        + "      api_key: k\n"
        for model in dict.fromkeys(["claude-haiku-4-5", *models])
    )
    config.write_text(
        "model_list:\n" + entries + "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    command += ["--host", HOST, "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    return serving("litellm", pinned(GATEWAY_CORE, command), port, env, api_key=LITELLM_KEY)
