"""A model with no price on a key with a budget: refused, never a flat cent a call."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.admission import Gate
from gateway.catalog import ModelCatalog
from gateway.errors import PermissionDenied
from gateway.metering.ceiling import CostCeiling
from gateway.metering.pricing import Pricing
from gateway.settings import TeamBudgetSettings
from tests.unit.admission.test_access import a_key, gate_with

BODY = {"model": "claude-zzz", "max_tokens": 64000, "messages": [{"role": "user", "content": "x"}]}


def priced_gate(tmp_path: Path, *keys: Any, **settings: Any) -> Gate:
    gate = gate_with(tmp_path, *keys, **settings)
    gate.ceiling = CostCeiling(Pricing.load(), ModelCatalog.load(), 32_768)
    return gate


async def admit(gate: Gate, secret: str, model: str, body: dict[str, Any]) -> Any:
    caller = await gate.authenticate([(b"x-api-key", secret.encode())], None)
    return await gate.admit(caller, "anthropic", [model], {**body, "model": model})


@pytest.mark.parametrize("budget", ["key", "team"])
def test_a_budgeted_key_may_not_call_a_model_without_a_price(tmp_path: Path, budget: str) -> None:
    if budget == "key":
        secret, key = a_key(daily_budget_usd=1.0)
        gate = priced_gate(tmp_path, key)
    else:
        secret, key = a_key(team="search")
        teams = {"search": TeamBudgetSettings(daily_budget_usd=1.0)}
        gate = priced_gate(tmp_path, key, teams=teams)
    with pytest.raises(PermissionDenied, match=r"pricing\.models"):
        asyncio.run(admit(gate, secret, "claude-zzz", BODY))
    # A priced model still goes.
    assert asyncio.run(admit(gate, secret, "claude-haiku-4-5", BODY)) is not None


def test_a_key_without_a_budget_still_calls_it_and_reserves_nothing(tmp_path: Path) -> None:
    secret, key = a_key()
    gate = priced_gate(tmp_path, key)
    admitted = asyncio.run(admit(gate, secret, "claude-zzz", BODY))
    assert admitted is not None
    assert admitted.reserved_nano == 0
