"""A gateway key's call is settled whatever happens after its reservation: a body that cannot
be sent as judged is refused before anything is reserved, and a failed shared-prefix
exchange leaves the call to be metered and settled as any other."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.cache.registry import PrefixRegistry, Seen
from gateway.endpoint.model_call import ModelCall
from gateway.rewrite.fingerprint import Fingerprint
from gateway.server.edge import Edge
from gateway.state.keys import GatewayKey, MemoryKeyStore, digest, new_secret
from tests.unit.endpoint.harness import MODEL, anthropic_message, json_reply, message_request, run


def keyed(tmp_path: Path) -> tuple[dict[str, str], GatewayKey, dict[str, dict[str, Any]]]:
    """A gateway key with a budget, its request headers and the gateway's settings for it."""
    secret = new_secret()
    key = GatewayKey(name="agent", digest=digest(secret), daily_budget_usd=10.0)
    keys_file = tmp_path / "keys.json"
    asyncio.run(MemoryKeyStore(keys_file).create(key))
    headers = {
        "anthropic-version": "2023-06-01",
        "x-api-key": secret,
        "content-type": "application/json",
    }
    sections: dict[str, dict[str, Any]] = {
        "state": {"keys_file": str(keys_file)},
        "providers": {"anthropic": {"base_url": "http://127.0.0.1:8090", "api_key": "sk-ant-held"}},
    }
    return headers, key, sections


def messages(app: Edge) -> ModelCall:
    endpoint = app.endpoints["POST", "/v1/messages"]
    assert isinstance(endpoint, ModelCall)
    return endpoint


def spent(app: Edge, key: GatewayKey) -> tuple[int, int, int, int]:
    """The key's spend counters, its reservations included (nano-USD)."""
    return asyncio.run(messages(app).deps.gate.ledger.spent(key, time.time()))


def test_a_body_too_deep_to_send_as_judged_is_refused_with_nothing_reserved(
    tmp_path: Path,
) -> None:
    headers, key, sections = keyed(tmp_path)
    deep = "[" * 300 + '"x"' + "]" * 300  # orjson parses 1024 levels but serializes 255
    tool_use = '{"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": %s}}'
    content = '[{"type": "text", "text": "Look it up"}, %s]' % (tool_use % deep)
    body = message_request(messages=[]).replace(
        b'"messages":[]', b'"messages":[{"role":"user","content":%s}]' % content.encode()
    )
    assert orjson.loads(body)["messages"][0]["content"][1]["input"]["q"]  # parseable
    apps: list[Edge] = []
    result = run(
        tmp_path,
        [lambda _: json_reply(anthropic_message())],
        [
            ("POST", "/v1/messages", headers, body),
            ("POST", "/v1/messages", headers, message_request()),
        ],
        before=apps.append,
        **sections,
    )
    refused, served = result.responses
    assert refused.status_code == 400
    error = refused.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert "nested too deeply" in error["error"]["message"]
    assert len(result.upstream.requests) == 1  # only the second call went out
    assert served.status_code == 200
    # What is held is the served call's settled cost, nothing of the refused one's reservation.
    cost = round(float(served.headers["x-gateway-cost-usd"]) * 1e9)
    day, month, _, _ = spent(apps[0], key)
    assert cost > 0
    assert abs(day - cost) <= 1
    assert abs(month - cost) <= 1


class FailingExchange:
    """The registry across replicas, unreachable in a way its own health check did not catch."""

    def __init__(self) -> None:
        self.calls = 0

    async def exchange(self, fp: Fingerprint, seen: Seen, registry: PrefixRegistry) -> None:
        self.calls += 1
        raise RuntimeError("shared prefixes broke")


def test_a_failed_shared_prefix_exchange_is_logged_and_the_call_still_metered_and_settled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    headers, key, sections = keyed(tmp_path)
    apps: list[Edge] = []
    failing = FailingExchange()

    def share_failing(app: Edge) -> None:
        apps.append(app)
        messages(app).parts.judge.shared = failing

    with caplog.at_level(logging.ERROR, logger="gateway.endpoint"):
        result = run(
            tmp_path,
            [lambda _: json_reply(anthropic_message())],
            [("POST", "/v1/messages", headers, message_request())],
            before=share_failing,
            **sections,
        )
    (response,) = result.responses
    assert response.status_code == 200
    assert failing.calls == 1
    (record,) = result.records  # every observer ran, the test's recorder after them
    assert record.admitted is not None
    assert len(result.calls) == 1  # the call log's line
    assert result.calls[0]["model_used"] == MODEL
    assert result.metric("gateway_requests_total", **requests_labels(result)) == 1
    cost = round(record.metered.cost_usd * 1e9)
    day, month, _, _ = spent(apps[0], key)
    assert cost > 0
    assert abs(day - cost) <= 1  # settled: the reservation replaced by the cost
    assert abs(month - cost) <= 1
    (logged,) = [r for r in caplog.records if "shared prefix exchange failed" in r.getMessage()]
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], RuntimeError)


def requests_labels(result: Any) -> dict[str, str]:
    """The labels of the one gateway_requests_total sample the call made."""
    for family in result.registry.collect():
        for sample in family.samples:
            if sample.name == "gateway_requests_total":
                return dict(sample.labels)
    raise AssertionError("no gateway_requests_total sample")
