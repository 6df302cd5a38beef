"""Getting a call started upstream: retries, fallbacks and hedging, all before the client
has a byte.

An attempt has *started* once a response arrives that will be relayed: a JSON body, an
error that is not worth retrying, or a stream's headers. Until then nothing has gone to
the client, so a failed attempt (429, 5xx, 529, a connect error, a timeout) is retried
with backoff, then moved to the step's fallback models in order (chain.py).

With a hedge, a second chain starts when the first has not started within the step's
TTFT budget, and whichever starts first is relayed; the other is cancelled (hedge.py).
There a stream has started only at its first content event: the events before it are held
(and a stream that breaks or sends an error event before any content is retried like a
failed status). Once bytes reach the client, nothing is ever replayed (relay.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from gateway.cascade.attempts import Attempt, Candidate, Route, Tap
from gateway.cascade.breaker import Breakers
from gateway.cascade.chain import Chain
from gateway.cascade.hedge import race
from gateway.cascade.outcome import ChainFailed, Deadline, Started
from gateway.cascade.retry import RetryPolicy
from gateway.cascade.retry_budget import RetryBudget
from gateway.upstream import Upstream

# What a caller of the dispatcher names, from the one module it calls.
__all__ = [
    "Attempt",
    "Candidate",
    "ChainFailed",
    "Deadline",
    "Dispatcher",
    "Route",
    "Started",
    "Tap",
]


class Dispatcher:
    def __init__(
        self,
        upstream: Upstream,
        policy: RetryPolicy,
        new_tap: Callable[[], Tap],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        breakers: Breakers | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.upstream = upstream
        self.policy = policy
        self.new_tap = new_tap
        self.sleep = sleep
        self.breakers = breakers
        self.budget = budget

    async def start(
        self,
        route: Route,
        candidates: Sequence[Candidate],
        hedge_after_s: float | None = None,
        hedge_with: Candidate | None = None,
        deadline: Deadline | None = None,
    ) -> Started:
        """The started attempt; raises ChainFailed when no attempt got a response, or none
        did before `deadline` (DeadlinePassed)."""
        if self.budget is not None:
            self.budget.call(route.provider)
        if hedge_after_s is None or hedge_with is None:
            # One chain: its attempt is noted relayed as it starts (chain.py).
            return await Chain(self, route, candidates, deadline, hedge=False, hold=False).run()
        primary = Chain(self, route, candidates, deadline, hedge=False, hold=True)
        hedge = Chain(self, route, [hedge_with], deadline, hedge=True, hold=True)
        started = await race(primary, hedge, hedge_after_s)
        mine = [i for i, a in enumerate(started.attempts) if a.hedge == started.hedged]
        if mine:
            started.attempts[mine[-1]] = started.attempts[mine[-1]]._replace(relayed=True)
        return started
