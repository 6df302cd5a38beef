"""The cost ceiling's facts of a conversation (metering/conversation.py) are the walk's,
whether its items are found by identity (an earlier body's very objects), are equal
copies, or differ from an earlier body's after some of them; and the runs it holds are
bounded."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.catalog import ModelCatalog
from gateway.catalog.tokens import media_of
from gateway.metering.ceiling import CostCeiling, cache_writes, writes_in
from gateway.metering.conversation import MIN_ITEMS, Conversations
from gateway.metering.pricing import Pricing
from tests.support.fixtures import FIXTURES, load
from tests.unit.metering.test_ceiling_media import CASES

HOUR = {"type": "ephemeral", "ttl": "1h"}
FILLER = [{"role": "user", "content": f"turn {i} " * 200} for i in range(6)]


def _conversations() -> Conversations:
    return Conversations(lambda item: writes_in([item]))


def _field(body: dict[str, Any]) -> str:
    return "input" if isinstance(body.get("input"), list) else "messages"


def _variants(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A long conversation around the body's items: as it is, with an item added, one left
    off, one changed, a breakpoint (1h, then 5m) on the newest, and a short one."""
    field = _field(body)
    items = [*FILLER, *(body.get(field) or [])]
    long = {**body, field: items}
    newest = {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": HOUR}]}
    five = {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {}}]}
    five["content"][0]["cache_control"] = {"type": "ephemeral"}
    return [
        long,
        {**long, field: [*items, {"role": "user", "content": "next"}]},
        {**long, field: items[:-1]},
        {**long, field: [*items[:3], {"role": "user", "content": "changed"}, *items[4:]]},
        {**long, field: [*items, newest]},
        {**long, field: [*items, five]},
        {**long, "system": [{"type": "text", "text": "s", "cache_control": HOUR}]},
        body,
    ]


def _bodies() -> list[tuple[bool, dict[str, Any]]]:
    out = [(api == "anthropic", body) for _, api, body, _ in CASES]
    for call in load(FIXTURES / "claude-long.jsonl").calls:
        out.append((call.wire == "anthropic", orjson.loads(call.raw_body())))
    return out


@pytest.mark.parametrize("anthropic", [True, False])
def test_facts_found_by_identity_equal_copy_or_walked_alike(anthropic: bool) -> None:
    conversations = _conversations()
    for _, body in _bodies():
        for variant in _variants(body):
            raw = orjson.dumps(variant)
            media, writes = media_of(variant), cache_writes(variant)
            for again in (variant, variant, copy.deepcopy(variant)):
                seen = conversations.of(again, anthropic, raw)
                if seen is None:  # a short conversation: walked with the body
                    assert len(again.get(_field(again)) or []) < MIN_ITEMS
                    continue
                assert (seen.media_chars, seen.media_tokens, seen.unsized) == media
                if anthropic:
                    assert cache_writes(again, seen.writes) == writes
                else:
                    assert seen.writes == "none"


def test_the_ceiling_reserves_alike_walked_or_found() -> None:
    pricing, catalog = Pricing.load(), ModelCatalog.load()
    warm = CostCeiling(pricing, catalog, default_output_tokens=4096)
    models = {"anthropic": ["claude-sonnet-4-6"], "openai": ["gpt-5.6-terra"]}
    for is_anthropic, body in _bodies():
        provider = "anthropic" if is_anthropic else "openai"
        for variant in _variants(body):
            raw = orjson.dumps(variant)
            # Without `raw` the body is serialized and walked whole, as before runs.
            expected = warm.usd(provider, models[provider], copy.deepcopy(variant))
            assert expected is not None
            for _ in range(2):
                assert warm.usd(provider, models[provider], variant, raw) == expected


def test_the_runs_held_are_bounded() -> None:
    conversations = Conversations(lambda item: writes_in([item]), max_runs=2, max_bytes=1000)
    bodies = [{"messages": [{"role": "user", "content": str(i)}] * 5} for i in range(4)]
    for body in bodies:
        conversations.of(body, True, b"x" * 100)
    assert len(conversations._runs) == 2
    conversations.of(bodies[0], True, b"x" * 900)  # 1,000 bytes with the newest other
    assert len(conversations._runs) == 2
    conversations.of(bodies[1], True, b"x" * 950)
    assert len(conversations._runs) == 1
    conversations.of(bodies[2], True, b"x" * 2000)  # larger than all: not held
    assert conversations._bytes == 950
