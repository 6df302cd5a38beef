"""What a call is charged, what a backlog line keeps, and what this replica remembers of a
key's spend: the admission package's parts on their own, no ledger."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from gateway.admission import Admitted, Charge
from gateway.admission.memory import KeyMemory, Known
from gateway.admission.refusals import OTHER_KEY, Refusals
from gateway.metering.metrics import Metrics
from gateway.state.keys import NANO, GatewayKey
from gateway.state.ledger import Period
from gateway.wire.usage import Usage

KEY = GatewayKey(name="agent", digest="d" * 64, team="search", daily_budget_usd=5.0)
TODAY = Period("d20261130", "m202611")


def admitted(reserved_usd: float = 0.01, local_usd: float = 0.0) -> Admitted:
    return Admitted(
        KEY, b"sk-ant-secret", TODAY, round(reserved_usd * NANO), digest="d" * 64,
        local_nano=round(local_usd * NANO), call_id="c1",
    )  # fmt: skip


def test_a_charge_is_the_calls_cost_and_the_tokens_it_made() -> None:
    usage = Usage(input=10, output=5, cache_read=100, cache_write_5m=7)
    charge = Charge.of(admitted(), 0.002, usage)
    assert charge.cost_nano == 2_000_000
    assert charge.tokens == 22  # cache reads are not tokens made
    assert not charge.unchecked


@pytest.mark.parametrize(
    ("cost", "at_least", "unseen", "charged"),
    [
        (0.002, False, 0, 0.002),
        (0.002, True, 0, 0.01),  # no price, or output unseen: never under the reservation
        (0.02, True, 0, 0.02),
        (0.002, False, 2, 0.022),  # a hedge's loser, a cut retried: a reservation each
    ],
)
def test_what_a_call_is_charged(cost: float, at_least: bool, unseen: int, charged: float) -> None:
    charge = Charge.of(
        admitted(0.01), cost, None, at_least_reserved=at_least, unseen_attempts=unseen
    )
    assert charge.cost_nano == round(charged * NANO)


def test_a_call_admitted_while_the_store_was_away_reserves_locally() -> None:
    charge = Charge.of(admitted(0.0, local_usd=0.01), 0.0, None, unseen_attempts=1)
    assert charge.unchecked
    assert charge.cost_nano == round(0.01 * NANO)


def test_a_backlog_line_round_trips_and_holds_no_secret() -> None:
    charge = Charge.of(admitted(), 0.003, Usage(input=1, output=2))
    line = charge.to_line()
    assert b"sk-ant-secret" not in line
    assert Charge.from_line(line) == charge


def test_known_spend_counts_only_in_its_day_and_month() -> None:
    known = Known(KEY, TODAY, (1, 2, 3, 4))
    assert known.spent_in(TODAY) == (1, 2, 3, 4)
    assert known.spent_in(Period("d20261201", "m202612")) == (0, 0, 0, 0)
    assert known.spent_in(Period("d20261129", "m202611")) == (0, 2, 0, 4)
    assert Known(KEY).spent_in(TODAY) == (0, 0, 0, 0)


def test_memory_adjusts_the_spend_of_the_period_it_knows() -> None:
    memory = KeyMemory(max_keys=1)
    memory.remember("a", KEY, TODAY, (10, 10, 0, 0))
    memory.adjust("a", TODAY, 5)
    memory.adjust("a", Period("d20261201", "m202612"), 100)  # another period: not this spend
    known = memory.get("a")
    assert known is not None
    assert known.spent == (15, 15, 5, 5)
    memory.confirm("b", KEY)  # bounded: the oldest key is forgotten
    assert memory.get("a") is None


def test_key_labels_are_bounded() -> None:
    refusals = Refusals(Metrics(CollectorRegistry()), max_labels=2)
    assert [refusals.label(n) for n in ("a", "b", "c", "a")] == ["a", "b", OTHER_KEY, "a"]
