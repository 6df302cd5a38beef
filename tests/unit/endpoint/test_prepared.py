"""A call's fallback bodies: serialised as the gateway serialises every body it changes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cascade.table import StepPlan
from gateway.endpoint.prepared import Prepared
from gateway.errors import InvalidRequest


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def call(payload: dict[str, Any]) -> Prepared:
    plan = StepPlan("synthesis", None, None, None, False, None, None, {"anthropic": ("b",)})
    return Prepared(body=b"{}", model="a", payload=payload, plan=plan)


def test_a_fallback_body_names_its_model() -> None:
    first, fallback = call({"model": "a", "max_tokens": 5}).candidates("anthropic")
    assert (first.model, fallback.model) == ("a", "b")
    assert fallback.body == b'{"model":"b","max_tokens":5}'


def test_a_body_too_deep_to_serialise_for_a_fallback_is_the_callers_400() -> None:
    """orjson parses 1,024 levels but writes 255: a body relayed as it came (no rule
    changed it) meets that limit only when a fallback's body is made from it."""
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        call({"model": "a", "metadata": nested(300)}).candidates("anthropic")
