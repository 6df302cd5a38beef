"""The anthropic 1.x SDK (x-api-key, version 2023-06-01, ?beta=true): emulator and gateway.

It is installed beside the 2.x SDK in its own folder (`make test` puts it in
.cache/anthropic-sdk-1) and runs in a subprocess, so both majors are tested in one suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SDK1_PATH = Path(__file__).parents[2] / ".cache" / "anthropic-sdk-1"
SESSION = Path(__file__).parent / "sdk1" / "session.py"


@pytest.fixture(scope="module", params=["emulator", "gateway"])
def session(request: pytest.FixtureRequest, emulator_url: str, gateway_url: str) -> dict[str, Any]:
    """The 1.x session run directly against the emulator, and through the gateway."""
    base_url = emulator_url if request.param == "emulator" else gateway_url
    if not SDK1_PATH.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SDK1_PATH} is missing: `make test` installs the 1.x SDK there")
        pytest.skip("anthropic 1.x not installed (run `make test`)")
    result = subprocess.run(
        [sys.executable, str(SESSION), base_url, f"sk-ant-sdk1-{request.param}"],
        env={**os.environ, "PYTHONPATH": str(SDK1_PATH)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_it_is_the_1x_sdk_speaking_the_old_dialect(session: dict[str, Any]) -> None:
    assert session["version"].startswith("1.")
    first = session["sent"][0]
    assert first["x-api-key"].startswith("sk-ant-sdk1-")
    assert "authorization" not in first
    assert first["anthropic-version"] == "2023-06-01"


def test_create_stream_and_beta_path(session: dict[str, Any]) -> None:
    assert session["created"] == session["streamed"] == session["beta"] == "hello from one"
    beta_urls = [sent["url"] for sent in session["sent"] if "anthropic-beta" in sent]
    assert beta_urls
    assert beta_urls[0].endswith("/v1/messages?beta=true")


def test_caching_and_count_tokens_agree(session: dict[str, Any]) -> None:
    write, read = session["usages"]
    assert write["cache_creation_input_tokens"] > 0
    assert write["cache_read_input_tokens"] == 0
    assert read["cache_read_input_tokens"] == write["cache_creation_input_tokens"]
    total = sum(
        read[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    assert total == session["counted"]


def test_errors_map_to_the_1x_exceptions(session: dict[str, Any]) -> None:
    assert session["overloaded"] == "OverloadedError 529"
