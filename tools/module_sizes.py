"""Lists the modules in gateway/ over the 300-line limit; fails on any not in ALLOWED.

A module holds one concept, in at most 300 lines. ALLOWED names the modules that were longer
when the check came in; one leaves the list when it is split, and none joins it. `make lint`
runs it: `.venv/bin/python tools/module_sizes.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 300
ROOT = Path(__file__).resolve().parent.parent
ALLOWED: set[str] = set()  # none left: every module was split to within the limit


def oversized(root: Path = ROOT) -> dict[str, int]:
    """Each module over LIMIT lines, by its path from `root`, with its line count."""
    sizes = {}
    for path in sorted((root / "gateway").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LIMIT:
            sizes[path.relative_to(root).as_posix()] = lines
    return sizes


def main() -> int:
    sizes = oversized()
    for name, lines in sorted(sizes.items(), key=lambda item: -item[1]):
        note = "allowed for now" if name in ALLOWED else "NEW: split it"
        print(f"{lines:5d}  {name}  ({note})")
    for name in sorted(ALLOWED - sizes.keys()):
        print(f"       {name}  (within {LIMIT} lines now: drop it from ALLOWED)")
    new = sizes.keys() - ALLOWED
    if new:
        print(f"{len(new)} module(s) over {LIMIT} lines outside the allowlist", file=sys.stderr)
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
