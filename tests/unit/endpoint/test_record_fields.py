"""The per-call records made with their values in the fields' order (a NamedTuple's keywords
cost more than the values): each field holds what the keyword form put there. Every value
is distinct, so two fields swapped would show."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from starlette.types import Message

from gateway.cascade.outcome import Deadline
from gateway.endpoint.model_call import ModelCall
from gateway.endpoint.prepared import Prepared
from gateway.endpoint.record import Outcome
from gateway.endpoint.steps import Arrival, record
from gateway.metering.calls import CallRecord
from gateway.metering.ceiling import price_context
from gateway.relay import Relay, Relayed
from gateway.rewrite.prompt_cache import KEY_RULE
from gateway.rewrite.request import Finding, Rewrite
from gateway.wire.usage import Usage


class Distinct:
    """A value unlike any other, named for the field it stands for."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def test_outcome_relayed_puts_each_value_in_its_field() -> None:
    values: Any = {name: Distinct(name) for name in Relayed._fields}
    relayed = Relayed(**{**values, "overhead_s": 0.25})
    attempts = [Distinct("attempt")]
    begun: Any = SimpleNamespace(attempts=attempts)
    answered, coalesced, shadow = Distinct("answered"), Distinct("coalesced"), Distinct("shadow")
    got = Outcome.relayed(
        relayed,
        begun,
        answered=answered,  # type: ignore[arg-type]
        preflight_s=2.5,
        coalesced=coalesced,  # type: ignore[arg-type]
        shadow=shadow,  # type: ignore[arg-type]
    )
    expected = Outcome(
        status=relayed.status,
        model=relayed.model,
        ttft_s=relayed.ttft_s,
        usage=relayed.usage,
        answered=answered,  # type: ignore[arg-type]
        attempts=tuple(attempts),  # type: ignore[arg-type]
        coalesced=coalesced,  # type: ignore[arg-type]
        overhead_s=0.25 + 2.5,  # the relay's, and the preflight's
        message_id=relayed.message_id,
        miss_reason=relayed.miss_reason,
        shadow=shadow,  # type: ignore[arg-type]
        text=relayed.text,
        unseen=relayed.unseen,
        service_tier=relayed.service_tier,
        priced=relayed.priced,
    )
    assert got == expected
    for name in Outcome._fields:
        if name not in ("overhead_s", "attempts"):  # both made anew: equal, compared above
            assert getattr(got, name) is getattr(expected, name), name


def test_outcome_relayed_adds_the_preflight_to_the_relays_overhead() -> None:
    relayed = Relayed("200", "m", overhead_s=0.25)
    begun: Any = SimpleNamespace(attempts=[])
    got = Outcome.relayed(relayed, begun, answered=1.0, preflight_s=0.5)
    assert got.overhead_s == 0.75


def test_record_puts_each_value_in_its_field() -> None:
    deps: Any = SimpleNamespace(
        wire=SimpleNamespace(provider=Distinct("provider")),
        meter=SimpleNamespace(price=lambda call: ("priced", call)),
    )
    arrival = Arrival(
        Distinct("request_id"),  # type: ignore[arg-type]
        Distinct("started"),  # type: ignore[arg-type]
        Distinct("started_at"),  # type: ignore[arg-type]
        [],
        Distinct("step"),  # type: ignore[arg-type]
    )
    call: Any = SimpleNamespace(
        plan=None,
        model=Distinct("model_requested"),
        rewrites=Distinct("rewrites"),
        findings=Distinct("findings"),
        tier=Distinct("tier"),
        payload={"service_tier": "priority"},
    )
    outcome = Outcome(
        "503",
        Distinct("model_used"),  # type: ignore[arg-type]
        Distinct("ttft_s"),  # type: ignore[arg-type]
        Distinct("usage"),  # type: ignore[arg-type]
        attempts=Distinct("attempts"),  # type: ignore[arg-type]
        coalesced=Distinct("coalesced"),  # type: ignore[arg-type]
        overhead_s=Distinct("overhead_s"),  # type: ignore[arg-type]
        unseen=Distinct("unseen"),  # type: ignore[arg-type]
        shadow=Distinct("shadow"),  # type: ignore[arg-type]
        text=Distinct("text"),  # type: ignore[arg-type]
        priced=None,  # unpriced by the relay: the context is the payload's (below, priced)
    )
    admitted: Any = SimpleNamespace(key=SimpleNamespace(name=Distinct("key")))
    verdict: Any = Distinct("cache")
    duration: Any = Distinct("duration_s")
    got = record(deps, arrival, call, outcome, admitted, duration, verdict)
    expected_call = CallRecord(
        request_id=arrival.request_id,
        provider=deps.wire.provider,
        step=arrival.step,
        model_requested=call.model,
        model_used=outcome.model,
        status=outcome.status,
        duration_s=duration,
        ttft_s=outcome.ttft_s,
        usage=outcome.usage,
        rewrites=call.rewrites,
        findings=call.findings,
        cache=verdict,
        coalesced=outcome.coalesced,
        overhead_s=outcome.overhead_s,
        started_at=arrival.started_at,
        tier=call.tier,
        attempts=outcome.attempts,
        budget_breaches=(),
        key=admitted.key.name,
        context=(("service_tier", "priority"),),
        priced=outcome.priced,
    )
    assert got.call == expected_call
    for name in CallRecord._fields[:-2]:  # context is made anew, equal: compared above
        assert getattr(got.call, name) is getattr(expected_call, name), name
    assert got.metered == ("priced", got.call)
    # An answer the relay priced: its context (of the same payload and served tier) is taken.
    priced: Any = SimpleNamespace(context=Distinct("context"))
    again = record(deps, arrival, call, outcome._replace(priced=priced), admitted, duration)
    assert again.call.context is priced.context
    assert again.call.priced is priced
    assert (got.admitted, got.unseen, got.shadow, got.text) == (
        admitted, outcome.unseen, outcome.shadow, outcome.text,
    )  # fmt: skip


class _Response:
    status_code = 200
    is_success = True

    def lowered(self) -> tuple[list[bytes], list[bytes]]:
        return [b"content-type"], [b"application/json"]


def _relay(reported: Any) -> Relay:
    wire: Any = SimpleNamespace(
        provider="anthropic",
        usage_from_body=lambda body: reported,
        message_text=lambda body: "the text",
    )
    upstream: Any = SimpleNamespace(settings=lambda provider: SimpleNamespace(max_event_bytes=1))
    pricing: Any = SimpleNamespace(cost=lambda *args, **kwargs: 0.5)
    return Relay(wire, upstream, pricing)


def test_a_json_bodys_relayed_puts_each_value_in_its_field() -> None:
    usage = Usage(3, 4)
    reported = SimpleNamespace(
        model="model", usage=usage, message_id="msg", miss_reason="why", service_tier="tier"
    )
    relay = _relay(reported)
    begun: Any = SimpleNamespace(response=_Response(), body=b"{}", model="begun")
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    got = asyncio.run(
        relay.body(begun, send, [], Deadline(0.0, 1.0), collect=True, payload={}, injected=None)
    )
    assert got.priced is not None
    expected = Relayed(
        status="200",
        model="model",
        usage=usage,
        ttft_s=None,
        overhead_s=got.overhead_s,
        message_id="msg",
        miss_reason="why",
        service_tier="tier",
        unseen=False,
        text="the text",
        priced=got.priced,
    )
    assert got == expected
    assert (got.priced.model, got.priced.usage, got.priced.usd) == ("model", usage, 0.5)
    # What `record` takes in place of pricing the payload and served tier again.
    assert got.priced.context == price_context({}, got.service_tier)
    assert got.overhead_s >= 0


def test_prepare_puts_each_value_in_its_field() -> None:
    """`ModelCall.prepare` makes its Prepared by position: each field holds what the keyword
    form puts there."""
    body = b'{"model":"m","messages":[]}'
    rewritten = {"model": "sent", "messages": []}
    rewrites = (Rewrite("rule_a", "x"), Rewrite(KEY_RULE, "the key"))
    findings = (Finding("finding_a", "why"),)
    request: Any = SimpleNamespace(
        body=rewritten,
        changed=True,
        rewrites=rewrites,
        findings=findings,
        fingerprint=Distinct("fingerprint"),
        min_cacheable_tokens=Distinct("min_cacheable_tokens"),
        tier=Distinct("tier"),
        observations=Distinct("observations"),
    )
    plan = Distinct("plan")
    parts: Any = SimpleNamespace(
        rewriter=lambda _: request,
        routing=SimpleNamespace(plan=lambda step: plan),
        turns=None,
    )
    deps: Any = SimpleNamespace(wire=SimpleNamespace(provider="anthropic", ask_usage=None))
    arrival = Arrival("r", 0.0, 0.0, [(b"content-type", b"application/json")], "step")
    got = ModelCall(deps, parts).prepare("POST", arrival, body)
    expected = Prepared(
        body=orjson.dumps(rewritten),
        model="m",
        rewrites=("rule_a", KEY_RULE),
        findings=("finding_a",),
        fingerprint=request.fingerprint,
        min_cacheable_tokens=request.min_cacheable_tokens,
        sent_model="sent",
        payload=rewritten,
        tier=request.tier,
        plan=plan,
        filtered=False,
        observations=request.observations,
        injected=orjson.dumps("the key"),
        reading=got.reading,
    )
    assert got == expected
    for name in ("fingerprint", "min_cacheable_tokens", "payload", "tier", "plan", "observations"):
        assert getattr(got, name) is getattr(expected, name), name
    assert got.reading is not None
    assert got.reading.parsed == {"model": "m", "messages": []}
