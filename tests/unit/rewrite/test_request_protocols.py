"""An LLMRequest behaves as the frozen dataclass it is declared as, however it is made: it
copies, deep-copies and pickles to an equal request; it is made by keyword or position with
dataclass's errors; `evolve` takes fields by name only, like dataclasses.replace."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, fields, replace
from typing import Any

import pytest

from gateway.rewrite.request import Finding, LLMRequest, Rewrite, evolve


def _full() -> LLMRequest:
    return evolve(
        LLMRequest("anthropic", {"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        step="plan",
        tenant=b"t",
        routing=False,
        tier="small",
        rewrites=(Rewrite("r", "d"),),
        findings=(Finding("f"),),
        changed=True,
        stable_system_blocks=2,
        dates_at=(1, 0),
        min_cacheable_tokens=1024,
        prompt_tools=b"[]",
    )


@pytest.mark.parametrize("made", [LLMRequest("openai", {}), _full()], ids=["plain", "full"])
@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda r: pickle.loads(pickle.dumps(r))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_a_request_copies_and_pickles_to_an_equal_request(made: LLMRequest, duplicate: Any) -> None:
    again = duplicate(made)
    assert type(again) is LLMRequest
    assert again == made
    assert [getattr(again, f.name) for f in fields(LLMRequest)] == [
        getattr(made, f.name) for f in fields(LLMRequest)
    ]
    with pytest.raises(FrozenInstanceError):
        again.tier = "x"  # type: ignore[misc]


def test_made_by_position_or_keyword_alike() -> None:
    values = [getattr(_full(), f.name) for f in fields(LLMRequest)]
    by_position = LLMRequest(*values)
    by_name = LLMRequest(**{f.name: v for f, v in zip(fields(LLMRequest), values, strict=True)})
    assert by_position == by_name == _full()
    plain = LLMRequest("p", {})
    assert plain == LLMRequest(provider="p", body={})
    assert all(getattr(plain, f.name) == f.default for f in fields(LLMRequest)[2:])


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("p",), {}),  # body missing
        (("p", {}), {"colour": "red"}),  # no such field
        (("p", {}), {"provider": "q"}),  # given twice
        (("p", {}, *[None] * 14), {}),  # one past the fields
    ],
)
def test_a_request_made_wrong_is_refused(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        LLMRequest(*args, **kwargs)


def test_evolve_takes_fields_by_name_only() -> None:
    """As dataclasses.replace: a value passed by position would silently land in the first
    field (the provider)."""
    with pytest.raises(TypeError):
        evolve(LLMRequest("anthropic", {}), "openai")  # type: ignore[misc]
    with pytest.raises(TypeError):
        replace(LLMRequest("anthropic", {}), "openai")  # type: ignore[misc]
