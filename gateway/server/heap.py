"""The heap a serving process starts with, kept out of the cyclic collector's passes.

After `create_app` a worker holds ~113,000 GC-tracked objects (modules, the model catalog,
pydantic and FastAPI internals, compiled patterns) that live as long as it does, and a full
collection walks all of them: ~70 ms on the benchmark machine. At c=1 full collections are
rare. At c=64 on a 340 KB agent body, each in-flight call's containers (lists of lines and
blocks) survive the young collections, so they are promoted to the oldest generation,
which then reaches CPython's trigger for a full pass (pending objects over a quarter of it)
about every 130 calls: 0.62 ms of collector time per call that does not exist at c=1
(bench/results/concurrency.md). Frozen, those startup objects are never scanned again; the
collector's thresholds stay CPython's, so garbage cycles are collected as soon as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collects what starting up left behind, then moves every surviving object to the
    permanent generation, which the collector never scans."""
    gc.collect()
    gc.freeze()
