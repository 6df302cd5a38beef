import gc
import weakref

from gateway.server.heap import YOUNG_THRESHOLD, freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.me = self


def test_startup_garbage_is_collected_and_the_rest_frozen() -> None:
    cycle = Node()
    gone = weakref.ref(cycle)
    kept = Node()
    del cycle
    thresholds = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *thresholds[1:])
        assert gone() is None  # a garbage cycle from start-up is not frozen with the rest
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: out of every generation
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert any(o is kept for o in gc.get_objects())
