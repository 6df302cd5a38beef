"""Expiry against `asyncio.timeout_at`, which it replaces in a chain's attempt: over a grid
of attempts (the deadline passes or not, the task is cancelled from outside before, with
or after it, the attempt swallows the cancellation, raises, or raises TimeoutError of its
own), the same outcome, the same cancellation count left on the task, the same timers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest

from gateway.cascade.expiry import Expiry

Attempt = Callable[[], Awaitable[str]]


async def with_timeout(at: float, attempt: Attempt) -> str:
    try:
        async with asyncio.timeout_at(at):
            return await attempt()
    except TimeoutError:
        return "deadline"


async def with_expiry(at: float, attempt: Attempt) -> str:
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
        [-1.0, 0.0, 0.01, 1.0],  # the deadline: passed, now, during the attempt, after it
        [None, 0.0, 0.005, 0.01, 0.05],  # a cancellation from outside
        ["returns", "swallows", "raises", "timeout_error"],
    )
)


@pytest.mark.parametrize(("deadline_s", "cancel_s", "kind"), GRID)
def test_expiry_behaves_as_asyncio_timeout_at(
    deadline_s: float, cancel_s: float | None, kind: str
) -> None:
    async def both() -> tuple[tuple[str, int, int], tuple[str, int, int]]:
        expected = await scenario(with_timeout, deadline_s, cancel_s, kind)
        got = await scenario(with_expiry, deadline_s, cancel_s, kind)
        return expected, got

    expected, got = asyncio.run(both())
    assert got == expected


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

    asyncio.run(main())
    assert refused == [True]
