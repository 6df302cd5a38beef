"""Progress lines of a benchmark: on stderr, so stdout carries only its report."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
