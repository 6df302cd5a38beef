"""The heap a serving process starts with, kept out of the cyclic collector's passes.

After `create_app` a worker holds ~113,000 GC-tracked objects (modules, the model catalog,
pydantic and FastAPI internals, compiled patterns) that live as long as it does, and a full
collection walks all of them: ~70 ms on the benchmark machine. At c=1 full collections are
rare. At c=64 on a 340 KB agent body, each in-flight call's containers (lists of lines and
blocks) survive the young collections, so they are promoted to the oldest generation,
which then reaches CPython's trigger for a full pass (pending objects over a quarter of it)
about every 130 calls: 0.62 ms of collector time per call that does not exist at c=1
(bench/results/concurrency.md). Frozen, those startup objects are never scanned again.

The young generation's threshold is ten times CPython's (7,000 container objects made and
not yet freed, against 700). A served call leaves no garbage cycle (server/edge_cycle.py;
tests/unit/server/test_edge_cycle.py), so the young collections found nothing to free; at
c=64 they ran every ~30 calls and each walked the ~6,000 containers of the calls in flight
(coroutines, tasks, headers), ~1.5 ms a pass on the benchmark machine: ~5 % of an 89-byte
call's CPU. A garbage cycle some other path leaves is still collected, after at most 7,000
objects made instead of 700.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7000  # container objects made, less those freed, between young passes


def freeze_startup_heap() -> None:
    """Collects what starting up left behind, then moves every surviving object to the
    permanent generation, which the collector never scans; then raises the young
    generation's threshold (the older generations' stay as they are)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
