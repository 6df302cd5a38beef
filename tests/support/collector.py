"""The cyclic garbage collector held off while a test runs, what it finds kept for the test
to look at: objects a served call leaves in a reference cycle, which the collector (not
their reference count) would have freed."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable stays in gc.garbage
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def garbage_of(*kinds: type) -> list[str]:
    """The names of the types of what a collection finds in reference cycles, of `kinds`."""
    gc.collect()
    found = [type(thing).__name__ for thing in gc.garbage if isinstance(thing, kinds)]
    gc.set_debug(0)
    gc.garbage.clear()  # counted once: freed by the next collection
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    return found
