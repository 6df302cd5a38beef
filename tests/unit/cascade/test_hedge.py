"""Hedged calls, in-process: the primary chain is held on an event that is never set (or
set by the test), so which chain wins is decided by the script, not by timing. A hedged
stream starts at its first content event; what comes before it can still be retried."""

from __future__ import annotations

import asyncio

import httpx

from gateway.cascade.dispatch import Candidate, ChainFailed, Started
from tests.unit.cascade.scripted import (
    CONTENT,
    OVERLOADED,
    ROUTE,
    START,
    STOP,
    Chunks,
    Reply,
    Script,
    Wired,
    body_reply,
    candidates,
    held,
    json_reply,
    retries,
    signalled,
)

A, B = "claude-sonnet-5-5", "claude-haiku-5-5"
OK = json_reply(200)


def hedged(w: Wired, primary: list[str], hedge: str, after_s: float) -> Started | ChainFailed:
    async def go() -> Started | ChainFailed:
        hedge_with = Candidate(hedge, candidates(hedge)[0].body)
        try:
            started = await w.dispatcher.start(
                ROUTE, candidates(*primary), hedge_after_s=after_s, hedge_with=hedge_with
            )
        except ChainFailed as failed:
            return failed
        await started.response.aclose()
        return started

    return asyncio.run(go())


def wired(replies: dict[str, list[Reply]], **settings: float) -> Wired:
    return Wired(Script(replies), retries(**settings))


def stream(
    *chunks: bytes, error: Exception | None = None, bodies: list[Chunks] | None = None
) -> Reply:
    return body_reply(chunks, error, stream=True, bodies=bodies)


def test_a_hedge_wins_when_the_primary_has_not_started() -> None:
    never = asyncio.Event()
    w = wired({A: [held(never, OK)], B: [OK]})
    started = hedged(w, [A], B, after_s=0)
    assert isinstance(started, Started)
    assert started.hedged
    assert started.model == B
    assert [(a.model, a.status, a.hedge, a.cancelled, a.relayed) for a in started.attempts] == [
        (A, "cancelled", False, True, False),
        (B, "200", True, False, True),
    ]


def test_no_hedge_is_sent_when_the_primary_starts_in_time() -> None:
    w = wired({A: [OK], B: [OK]})
    started = hedged(w, [A], B, after_s=60)
    assert isinstance(started, Started)
    assert not started.hedged
    assert w.script.calls == [A]


def test_the_primary_wins_when_it_starts_before_the_hedge() -> None:
    hedge_sent, never = asyncio.Event(), asyncio.Event()
    bodies: list[Chunks] = []
    hedge = signalled(hedge_sent, held(never, stream(START, CONTENT, bodies=bodies)))
    w = wired({A: [held(hedge_sent, OK)], B: [hedge]})
    started = hedged(w, [A], B, after_s=0)
    assert isinstance(started, Started)
    assert not started.hedged
    assert started.model == A
    assert [(a.model, a.cancelled, a.relayed) for a in started.attempts] == [
        (A, False, True),
        (B, True, False),
    ]


def test_when_both_chains_fail_the_primarys_answer_is_relayed() -> None:
    hedge_answered = asyncio.Event()
    hedge = answered(hedge_answered, json_reply(400))
    w = wired({A: [held(hedge_answered, json_reply(404))], B: [hedge]})
    started = hedged(w, [A], B, after_s=0)
    assert isinstance(started, Started)
    assert started.response.status_code == 404
    assert not started.hedged
    assert w.script.calls == [A, B]


def answered(done: asyncio.Event, reply: Reply) -> Reply:
    """Sets `done` once `reply` has been made."""

    async def made(request: httpx.Request) -> httpx.Response:
        response = await reply(request)
        done.set()
        return response

    return made


def test_a_hedged_stream_starts_at_its_first_content_event() -> None:
    w = wired({A: [stream(START, CONTENT, STOP)], B: [OK]})
    started = hedged(w, [A], B, after_s=60)
    assert isinstance(started, Started)
    assert started.tap is not None
    assert started.tap.saw_content
    assert b"".join(started.prelude) == START + CONTENT  # held, for the relay to send first


def test_a_hedged_stream_that_errors_before_content_is_retried() -> None:
    w = wired({A: [stream(START, OVERLOADED), stream(START, CONTENT)], B: [OK]})
    started = hedged(w, [A], B, after_s=60)
    assert isinstance(started, Started)
    assert [a.status for a in started.attempts] == ["stream_error", "200"]
    assert w.slept != []
    assert started.attempts[0].usage is not None  # what it reported before failing
    assert started.attempts[0].usage.input == 7


def test_a_hedged_stream_cut_before_content_is_retried() -> None:
    cut = stream(START, error=httpx.ReadError("reset"))
    w = wired({A: [cut, stream(START, CONTENT)], B: [OK]})
    started = hedged(w, [A], B, after_s=60)
    assert isinstance(started, Started)
    assert [a.status for a in started.attempts] == ["cut", "200"]


def test_a_stream_that_keeps_erroring_is_relayed_with_its_error_event() -> None:
    w = wired({A: [stream(START, OVERLOADED)], B: [OK]}, attempts_per_model=2)
    never = asyncio.Event()
    w.script.replies[B] = [held(never, OK)]
    started = hedged(w, [A], B, after_s=60)
    assert isinstance(started, Started)
    assert started.tap is not None
    assert started.tap.error_type == "overloaded_error"
    assert b"".join(started.prelude) == START + OVERLOADED


def test_a_hedge_losers_stream_is_closed_and_its_usage_kept() -> None:
    never = asyncio.Event()
    bodies: list[Chunks] = []
    # The primary's stream started (message_start) but sends no content: held open.
    slow = body_reply([START], stream=True, hold=never, bodies=bodies)
    w = wired({A: [slow], B: [OK]})
    started = hedged(w, [A], B, after_s=0)
    assert isinstance(started, Started)
    assert started.hedged
    loser = started.attempts[0]
    assert loser.cancelled
    assert loser.usage is not None
    assert loser.usage.input == 7  # its input is billed: the call log and budget count it
    assert bodies[0].closed


def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    never = asyncio.Event()
    w = wired({A: [json_reply(529)], B: [OK]}, attempts_per_model=1, breaker_failures=1)
    hedged(w, [A], B, after_s=60)  # A fails at once (no hedge): its breaker opens
    assert w.breakers.state("anthropic", A) == "open"
    w.clock.now += 3600
    w.script.replies[A] = [held(never, OK)]
    started = hedged(w, [A], B, after_s=0)  # A's probe is cancelled when the hedge wins
    assert isinstance(started, Started)
    assert started.hedged
    assert w.breakers.admit("anthropic", A) is None  # the next call may probe
