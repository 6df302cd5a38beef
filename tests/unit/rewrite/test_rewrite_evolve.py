"""`evolve` builds what dataclasses.replace builds for an LLMRequest, faster."""

from dataclasses import fields, replace
from typing import Any

import pytest

from gateway.rewrite.request import Finding, LLMRequest, Rewrite, evolve

CHANGES: dict[str, Any] = {
    "provider": "openai",
    "body": {"model": "m", "messages": []},
    "step": "plan",
    "tenant": b"t",
    "routing": False,
    "tier": "small",
    "rewrites": (Rewrite("r", "d"),),
    "findings": (Finding("f"),),
    "changed": True,
    "stable_system_blocks": 2,
    "dates_at": (1, 0),
    "min_cacheable_tokens": 1024,
    "prompt_tools": b"[]",
}


def test_every_field_is_covered() -> None:
    assert {f.name for f in fields(LLMRequest)} - set(CHANGES) <= {"fingerprint", "observations"}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_one_field_changed_matches_replace(name: str) -> None:
    base = LLMRequest("anthropic", {"model": "a"}, tenant=b"x")
    new = evolve(base, **{name: CHANGES[name]})
    assert new == replace(base, **{name: CHANGES[name]})
    assert all(
        getattr(new, f.name) is getattr(base, f.name) for f in fields(LLMRequest) if f.name != name
    )
    assert base == LLMRequest("anthropic", {"model": "a"}, tenant=b"x")  # the original unchanged


def test_all_fields_changed_and_frozen() -> None:
    base = LLMRequest("anthropic", {})
    new = evolve(base, **CHANGES)
    assert new == replace(base, **CHANGES)
    assert type(new) is LLMRequest
    with pytest.raises(AttributeError):
        new.tier = "x"  # type: ignore[misc]


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises((AttributeError, TypeError)):
        evolve(LLMRequest("anthropic", {}), colour="red")  # type: ignore[call-arg]


def test_every_field_is_copied_from_a_full_request() -> None:
    full = evolve(LLMRequest("anthropic", {}), **CHANGES)
    new = evolve(full, tier="large")
    assert new == replace(full, tier="large")
    assert all(
        getattr(new, f.name) is getattr(full, f.name)
        for f in fields(LLMRequest)
        if f.name != "tier"
    )


def test_rewrites_findings_and_tail_judgements_are_frozen_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tuples of named fields (made at once), read by name and learned by their pattern."""
    from gateway.cache.bounded import LearnedState
    from gateway.cache.learned import LearnedMemory
    from gateway.rewrite.snapshot import TailJudged

    assert (Rewrite("r").rule, Rewrite("r").detail, Finding("f", "d").code) == ("r", "", "f")
    with pytest.raises(AttributeError):
        Finding("f").code = "g"  # type: ignore[misc]
    memory = LearnedMemory.within(LearnedState.default())
    judged = TailJudged(b"tenant", "plan", "m")
    assert (judged.tenant, judged.step, judged.model) == (b"tenant", "plan", "m")
    told: list[tuple[bytes, str | None, str]] = []
    monkeypatch.setattr(memory.prefixes, "tail_judged", lambda *args: told.append(args))
    memory.learn([judged])  # matched as `TailJudged(tenant, step, model)`
    assert told == [(b"tenant", "plan", "m")]


def test_a_request_is_made_as_its_dataclass_init_would() -> None:
    """LLMRequest's own __new__ (request.py) stores what the dataclass's __init__ stored:
    every field given, by position or name, or its default."""
    names = [f.name for f in fields(LLMRequest)]
    given = {name: object() for name in names}  # a distinct value each
    by_name = LLMRequest(**given)  # type: ignore[arg-type]
    by_position = LLMRequest(*given.values())  # type: ignore[arg-type]
    for name in names:
        assert getattr(by_name, name) is given[name]
        assert getattr(by_position, name) is given[name]
    least = LLMRequest("openai", {})
    assert all(getattr(least, f.name) is f.default for f in fields(LLMRequest)[2:])
    with pytest.raises(TypeError):
        LLMRequest("openai")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        LLMRequest("openai", {}, colour="red")  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        by_name.body = {}  # type: ignore[misc]
