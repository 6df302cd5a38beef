"""OpenAI's priority tier is billed dearer: metered at the tier the response reports, else
the one the request asked for."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from gateway.metering.calls import CallRecord, Meter
from gateway.metering.ceiling import PRIORITY, price_context
from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.wire.openai_usage import ChatStreamUsage, usage_from_chat, usage_from_response
from gateway.wire.usage import Usage

MODEL = "gpt-5.6-terra"


def test_the_served_tier_wins_over_the_asked_one() -> None:
    assert price_context({"service_tier": "priority"}) == PRIORITY
    assert price_context({"service_tier": "priority"}, "default") == ()
    assert price_context({}, "priority") == PRIORITY
    assert price_context({"service_tier": "flex"}) == ()


def test_responses_report_their_tier() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    chat = orjson.dumps({"model": MODEL, "usage": usage, "service_tier": "priority"})
    assert usage_from_chat(chat).service_tier == "priority"
    response = {"model": MODEL, "usage": {"input_tokens": 1, "output_tokens": 1}}
    assert usage_from_response(orjson.dumps({**response, "service_tier": "priority"})).service_tier
    tap = ChatStreamUsage()
    tap.feed(b'data: {"id":"c","model":"m","service_tier":"priority","choices":[]}\n\n')
    assert tap.service_tier == "priority"


def test_a_priority_call_is_metered_at_the_priority_price() -> None:
    meter = Meter(Metrics(CollectorRegistry()), LabelBounds(["s"], [MODEL]))
    record = CallRecord("r", "openai", None, MODEL, MODEL, "200", 1.0, None, Usage(100, 1000))
    default = meter.cost(record)
    priority = meter.cost(record._replace(context=PRIORITY))
    assert default is not None
    assert priority == pytest.approx(2 * default)
