"""A hedge race: when the primary chain has not started within the step's TTFT budget, a
second chain starts, and whichever starts first is relayed; the other is cancelled and any
response it got is closed. Both chains hold a stream until its first content event, so a
stream that started but has not yet sent content cannot win."""

from __future__ import annotations

import asyncio

from gateway.cascade.chain import Chain
from gateway.cascade.outcome import ChainFailed, Started


async def race(primary: Chain, hedge: Chain, after_s: float) -> Started:
    """The started attempt of the chain that won; the primary's when both failed. Raises
    ChainFailed when every attempt of both chains failed before a response."""
    first = asyncio.ensure_future(primary.run())
    second: asyncio.Future[Started] | None = None
    chosen: asyncio.Future[Started] | None = None
    try:
        await asyncio.wait({first}, timeout=after_s)
        if first.done():
            chosen = first
        else:
            second = asyncio.ensure_future(hedge.run())
            pending: set[asyncio.Future[Started]] = {first, second}
            while pending and chosen is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                chosen = next((future for future in done if _succeeded(future)), None)
            chosen = chosen or first  # both failed: the primary's last answer is relayed
    finally:
        for future in (first, second):
            if future is not None and future is not chosen:
                await _discard(future)
    started = chosen.result()  # ChainFailed when every attempt of both chains failed
    # After the loser is discarded: its cancelled attempt is in its chain's list now.
    started.attempts = [*primary.attempts, *hedge.attempts]
    started.hedged = chosen is second
    return started


def _succeeded(future: asyncio.Future[Started]) -> bool:
    if future.cancelled() or future.exception() is not None:
        return False
    started = future.result()
    return started.response.is_success and not started.stream_failed


async def _discard(future: asyncio.Future[Started]) -> None:
    """Stops a chain that lost (or was abandoned) and closes any response it got."""
    if not future.done():
        future.cancel()
    try:
        started = await future
    except (asyncio.CancelledError, ChainFailed):
        return
    await started.response.aclose()
