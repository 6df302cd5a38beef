"""A call's body serialized from its parse's bytes (endpoint/prepared.py's Reading): a
fallback's body and a gateway key's judged body are `orjson.dumps` of the payload, and a raw
body that is its parse's dumps is not serialized again."""

from __future__ import annotations

import orjson

from gateway.cache.turns import Turns
from gateway.cascade.table import StepPlan
from gateway.endpoint.prepared import MIN_REUSE_BYTES, Prepared, read

HEADERS = [(b"content-type", b"application/json"), (b"x-api-key", b"k")]
SYSTEM = "s" * MIN_REUSE_BYTES  # a body past the size where reuse pays
BODY = {"model": "a", "messages": [{"role": "user", "content": "hi"}], "system": SYSTEM}


def test_a_kept_turn_is_reused_for_the_next_body_and_serialized_by_splicing() -> None:
    turns = Turns()
    raw = orjson.dumps(BODY)
    first = read(HEADERS, raw, turns, b"t")
    assert first.base is None
    first.keep()
    grown = {**BODY, "messages": [*BODY["messages"], {"role": "assistant", "content": "yo"}]}
    second = read(HEADERS, orjson.dumps(grown), turns, b"t")
    assert second.base is not None
    assert second.parsed == grown
    assert second.parsed["system"] is first.parsed["system"]
    changed = {**second.parsed, "model": "b"}
    assert second.dumps(changed) == orjson.dumps(changed)


def test_fallbacks_and_a_judged_body_are_the_payloads_dumps() -> None:
    raw, turns = orjson.dumps(BODY), Turns()
    read(HEADERS, raw, turns, b"t").keep()
    reading = read(HEADERS, raw, turns, b"t")  # repeated: reused, and known canonical
    fallbacks = {"anthropic": ("b", "c")}
    plan = StepPlan("s", None, None, None, False, None, None, fallbacks)
    call = Prepared(body=raw, model="a", payload=reading.parsed, plan=plan, reading=reading)
    assert call.as_judged(raw) is call  # the raw body is its parse's dumps: sent as is
    for candidate in call.candidates("anthropic")[1:]:
        assert candidate.body == orjson.dumps({**BODY, "model": candidate.model})
    spaced = b'{"model": "a", "messages": []}'  # not canonical: serialized from its parse
    loose = read(HEADERS, spaced, Turns(), b"t")
    judged = Prepared(body=spaced, payload=loose.parsed, reading=loose).as_judged(spaced)
    assert judged.body == orjson.dumps(loose.parsed)


def test_a_small_body_is_parsed_whole_and_not_kept() -> None:
    turns = Turns()
    small = orjson.dumps({**BODY, "system": "s"})
    read(HEADERS, small, turns, b"t").keep()
    again = read(HEADERS, small, turns, b"t")
    assert again.base is None
    assert again.turn is None
    assert not list(turns.held(b"t"))
