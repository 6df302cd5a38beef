"""Expiry against `asyncio.timeout_at`, which it replaces in a chain's attempt and in the
relay's stream: over a grid of attempts (the deadline passes or not, the task is cancelled
from outside before, with or after it, the attempt swallows the cancellation, raises, or
raises TimeoutError of its own), the same outcome, the same cancellation count left on the
task, the same timers.

The grid runs on an event loop whose clock moves only when the loop would wait, by what it
would wait: every run sees the same order of timers, whatever the machine's load."""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.cascade.expiry import Expiry

Attempt = Callable[[], Awaitable[str]]


class _Waitless(selectors.DefaultSelector):
    """A selector that never blocks: the time the loop would have waited is added to `now`."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            self.now += timeout
        return super().select(0)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._waitless = _Waitless()
        super().__init__(self._waitless)

    def time(self) -> float:
        return self._waitless.now


def run_virtual(main: Awaitable[Any]) -> Any:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


async def with_timeout(at: float, attempt: Attempt) -> str:
    try:
        async with asyncio.timeout_at(at):
            return await attempt()
    except TimeoutError:
        return "deadline"


async def with_expiry(at: float, attempt: Attempt) -> str:
    """As cascade/chain.py's attempt uses it."""
    expiry = Expiry(at)
    try:
        result = await attempt()
    except BaseException as error:
        passed = expiry.end(type(error) is asyncio.CancelledError)
        if not passed and not isinstance(error, TimeoutError):
            raise
        return "deadline"
    expiry.end(False)
    return result


async def bare_timeout(at: float, attempt: Attempt) -> str:
    async with asyncio.timeout_at(at):
        return await attempt()


async def bare_expiry(at: float, attempt: Attempt) -> str:
    """As relay.py's stream uses it: the deadline's cancellation raised as a TimeoutError."""
    expiry = Expiry(at)
    try:
        result = await attempt()
    except BaseException as error:
        if expiry.end(type(error) is asyncio.CancelledError):
            raise TimeoutError from error
        raise
    expiry.end(False)
    return result


def attempt_of(kind: str, wait_s: float) -> Attempt:
    async def attempt() -> str:
        if kind == "timeout_error":
            await asyncio.sleep(wait_s)
            raise TimeoutError("the attempt's own")
        if kind == "raises":
            await asyncio.sleep(wait_s)
            raise ValueError("no")
        if kind == "swallows":
            try:
                await asyncio.sleep(wait_s)
            except asyncio.CancelledError:
                return "swallowed"
            return "done"
        await asyncio.sleep(wait_s)
        return "done"

    return attempt


async def scenario(
    guard: Callable[[float, Attempt], Awaitable[str]],
    deadline_s: float,
    cancel_s: float | None,
    kind: str,
) -> tuple[str, int, int]:
    loop = asyncio.get_running_loop()
    cancels_left = -1

    async def call() -> str:
        nonlocal cancels_left
        try:
            return await guard(loop.time() + deadline_s, attempt_of(kind, 0.02))
        finally:
            task = asyncio.current_task()
            assert task is not None
            cancels_left = task.cancelling()

    task = asyncio.ensure_future(call())
    if cancel_s is not None:
        loop.call_later(cancel_s, task.cancel)
    try:
        outcome = await task
    except asyncio.CancelledError:
        outcome = "cancelled"
    except ValueError:
        outcome = "raised"
    except TimeoutError:
        outcome = "timeout_error"
    await asyncio.sleep(0.03)  # whatever timer is left, fired or not
    pending = sum(1 for h in loop._scheduled if not h.cancelled())  # type: ignore[attr-defined]
    return outcome, cancels_left, pending


GRID = list(
    itertools.product(
        [-1.0, 0.0, 0.01, 0.02, 1.0],  # the deadline: passed, now, during, as it ends, after
        [None, 0.0, 0.005, 0.01, 0.02, 0.05],  # a cancellation from outside
        ["returns", "swallows", "raises", "timeout_error"],
    )
)
GUARDS = [(with_timeout, with_expiry), (bare_timeout, bare_expiry)]


@pytest.mark.parametrize(("deadline_s", "cancel_s", "kind"), GRID)
@pytest.mark.parametrize(("asyncio_guard", "expiry_guard"), GUARDS)
def test_expiry_behaves_as_asyncio_timeout_at(
    asyncio_guard: Callable[[float, Attempt], Awaitable[str]],
    expiry_guard: Callable[[float, Attempt], Awaitable[str]],
    deadline_s: float,
    cancel_s: float | None,
    kind: str,
) -> None:
    expected = run_virtual(scenario(asyncio_guard, deadline_s, cancel_s, kind))
    got = run_virtual(scenario(expiry_guard, deadline_s, cancel_s, kind))
    assert got == expected


def test_the_grid_sees_the_deadline_and_the_outside_cancellation() -> None:
    """The virtual clock orders them: each outcome the grid compares is reached."""
    outcomes = {
        run_virtual(scenario(with_timeout, deadline_s, cancel_s, kind))[0]
        for deadline_s, cancel_s, kind in GRID
    }
    assert {"deadline", "cancelled", "done", "swallowed", "raised"} <= outcomes


def test_expiry_outside_a_task_is_refused() -> None:
    refused: list[bool] = []

    def outside(at: float) -> None:
        try:
            Expiry(at)
        except RuntimeError:
            refused.append(True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(outside, loop.time())
        await asyncio.sleep(0)

    run_virtual(main())
    assert refused == [True]
