"""The harness that runs servers for the benchmarks and the integration tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.harness.process import started

# Says something on each stream, then marks itself ready (a file) and waits to be stopped.
SERVER = """
import pathlib, sys, time
print("listening", flush=True)
print("boom", file=sys.stderr, flush=True)
pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""


def server(tmp_path: Path) -> tuple[list[str], Callable[[], bool]]:
    ready = tmp_path / "ready"
    return [sys.executable, "-c", SERVER, str(ready)], ready.exists


def test_a_failing_block_shows_the_servers_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, ready = server(tmp_path)
    with pytest.raises(AssertionError), started(command, ready):
        raise AssertionError("the test failed")
    err = capsys.readouterr().err
    assert "listening" in err
    assert "boom" in err


def test_a_passing_block_shows_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command, ready = server(tmp_path)
    with started(command, ready):
        pass
    assert "listening" not in capsys.readouterr().err
