"""The one frozen record each observer is given after a call: built once, what the call
came to whether it was relayed, refused, failed upstream or left by its client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import Message

from gateway.app import create_app
from tests.unit.endpoint.harness import (
    ANTHROPIC,
    MODEL,
    anthropic_message,
    anthropic_stream,
    json_reply,
    message_request,
    observed,
    run,
    settings,
    streamed,
)

JSON = {**ANTHROPIC, "content-type": "application/json"}


def test_a_relayed_call_gives_every_observer_one_frozen_priced_record(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        [lambda _: streamed(anthropic_stream(output_tokens=9))],
        [
            (
                "POST",
                "/v1/messages",
                {**JSON, "x-gateway-step": "search"},
                message_request(stream=True),
            )
        ],
    )
    (record,) = result.records
    call = record.call
    assert (call.status, call.model_requested, call.model_used, call.step) == (
        "200", MODEL, MODEL, "search",
    )  # fmt: skip
    assert call.usage is not None
    assert (call.usage.input, call.usage.output) == (10, 9)
    assert call.ttft_s is not None
    assert call.duration_s >= call.ttft_s
    assert record.metered.cost_usd > 0
    assert round(record.metered.cost_usd, 8) == result.calls[0]["cost_usd"]
    assert not record.unseen
    assert record.admitted is None  # a provider key, passed through
    assert [a.relayed for a in call.attempts] == [True]
    with pytest.raises(AttributeError):  # frozen
        record.unseen = True  # type: ignore[misc]


def test_a_refused_call_and_a_failed_chain_are_recorded_with_their_status(
    tmp_path: Path,
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    result = run(
        tmp_path,
        [lambda _: json_reply(overloaded, 529)],
        [
            ("POST", "/v1/messages", JSON, b"[]"),
            ("POST", "/v1/messages", JSON, message_request()),
        ],
        routing={"retries": {"base_delay_s": 0, "attempts_per_model": 2}},
    )
    refused, failed = result.records
    assert (refused.call.status, refused.call.usage, refused.call.attempts) == ("400", None, ())
    assert failed.call.status == "529"
    assert [a.status for a in failed.call.attempts] == ["529", "529"]
    assert result.responses[1].headers["x-should-retry"] == "false"  # retried already
    assert failed.metered.cost_usd == 0


@pytest.mark.parametrize(("events", "output", "unseen"), [(3, 1, True), (5, 9, False)])
def test_a_client_that_leaves_mid_stream_is_recorded_as_client_closed_with_unseen_tokens(
    tmp_path: Path, events: int, output: int, unseen: bool
) -> None:
    """Raw ASGI: the client disconnects once it has `events` events; upstream would never
    finish. What the tap had not read yet (it reads in batches after the first token) is
    read for the record: a message_delta that came counts."""

    def reply(_: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for chunk in anthropic_stream(output_tokens=9)[:events]:
                yield chunk
            await asyncio.Event().wait()  # never ends: only the client's leaving stops it
            yield b""

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    app = create_app(settings(tmp_path), CollectorRegistry(), httpx.MockTransport(reply))
    recorder = observed(app)
    sent: list[Message] = []

    async def go() -> None:
        got_body = asyncio.Event()
        requests: list[Message] = [
            {"type": "http.request", "body": message_request(stream=True), "more_body": False}
        ]

        async def receive() -> Message:
            if requests:
                return requests.pop()
            await got_body.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if sum(m["type"] == "http.response.body" for m in sent) == events:
                got_body.set()

        scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/v1/messages",
            "raw_path": b"/v1/messages",
            "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in JSON.items()],
        }
        rest = app.rest
        async with rest.router.lifespan_context(rest):
            await asyncio.wait_for(app(scope, receive, send), timeout=30)

    asyncio.run(go())
    assert sent[0]["status"] == 200
    (record,) = recorder.records
    assert record.call.status == "client_closed"
    assert record.call.usage is not None
    assert record.call.usage.input == 10  # from message_start
    assert record.call.usage.output == output
    # Without its final usage, charged at least its reservation.
    assert record.unseen is unseen


def test_an_observer_sees_the_cache_verdict_of_a_rewritten_call(tmp_path: Path) -> None:
    system = [{"type": "text", "text": "You are a careful assistant. " * 400}]
    body = message_request(system=system)
    result = run(
        tmp_path,
        [lambda _: json_reply(anthropic_message())],
        [("POST", "/v1/messages", JSON, body)],
    )
    (record,) = result.records
    assert record.call.cache is not None
    assert record.call.cache.cause == result.calls[0]["cache_miss_cause"]
