"""What a callgrind dump counted: its event totals, and the share of glibc's block copies.

A copy or fill of 4 KB or more runs as one `rep movsb` / `rep stosb` (glibc's `*_erms`
memcpy, memmove and memset on this machine's CPUs), which valgrind counts an instruction a
byte: a 115 KB copy is 115 K instructions, where the CPU moves tens of bytes a cycle (~3 us,
CPU time of `bytes` slicing in a loop on the benchmark machine; ~115 K Python-interpreter
instructions take ~50 us). So two processes' counts compare their CPU time only once those
bytes are set apart: the do-nothing proxy copies a 115 KB body five times a call, the
gateway twice.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

# glibc's block-copy and fill functions that switch to `rep movsb`/`rep stosb` past a size.
BLOCK_MOVES = re.compile(r":__(memcpy|memmove|mempcpy|memset)_\w*erms\b")
# A function's line in `callgrind_annotate --show=Ir`: "1,234,567 (12.34%)  file:function [object]"
ANNOTATED = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$")


def events(dump: Path) -> dict[str, int]:
    """The dump's total of each event it counted (Ir alone, or with the cache simulation
    also data reads and writes and their L1 and last-level misses: Dr Dw D1mr D1mw DLmr
    DLmw ...)."""
    text = dump.read_text(errors="replace")
    names = re.search(r"^events:\s*(.+)$", text, re.M)
    found = re.search(r"^summary:\s*(.+)$", text, re.M) or re.search(
        r"^totals:\s*(.+)$", text, re.M
    )
    if names is None or found is None:
        raise SystemExit(f"no event totals in {dump}")
    return dict(zip(names.group(1).split(), map(int, found.group(1).split()), strict=False))


def block_moves(annotated: str) -> int:
    """The instructions counted in glibc's block copies and fills, from the per-function
    (self cost) listing of `callgrind_annotate --show=Ir --inclusive=no`."""
    total = 0
    for line in annotated.splitlines():
        found = ANNOTATED.match(line)
        if found is not None and BLOCK_MOVES.search(found.group(2)):
            total += int(found.group(1).replace(",", ""))
    return total


def block_moves_in(dump: Path) -> int:
    """block_moves of a dump, through valgrind's callgrind_annotate."""
    command = ["callgrind_annotate", "--show=Ir", "--inclusive=no", "--auto=no"]
    command += ["--threshold=100", str(dump)]
    listing = subprocess.run(command, check=True, capture_output=True, text=True)
    return block_moves(listing.stdout)
