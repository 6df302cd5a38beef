"""Recorded real-client sessions replayed through the gateway (tests/fixtures/recordings).

Each fixture is a session of Claude Code, Codex or a Python framework, recorded against the
emulator and scrubbed to its shape (docs/recordings.md). Its calls are sent, in order, with
their recorded headers and bodies, once straight to the emulator and once through `gateway
serve`, with a recording proxy between the gateway and the emulator to see what went
upstream. Each replay gets its own API key, so the two never share a cache. Asserted:
- every call is answered 2xx, direct and through the gateway;
- the body upstream equals the client's except for what the rules listed in
  `x-gateway-rewrites` change (tests/support/rewrite_diff.py);
- no text changes role, except dated lines that vary moving to the newest user turn;
- the structure around the text stays: no block or message added, no parts merged, no
  part list turned into a string, no line lifted out of its `<section>`;
- the session costs no more through the gateway than direct (usage priced by
  gateway/metering/pricing.py).
Known failures are marked xfail(strict) with what they show, so they turn
into failures to unmark when a fix lands.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from bench.harness import free_port, server_process
from gateway.metering.pricing import Pricing
from gateway.wire.anthropic_usage import StreamUsage, usage_from_message
from gateway.wire.openai_usage import (
    ChatStreamUsage,
    usage_from_chat,
    usage_from_response,
)
from gateway.wire.responses_usage import ResponsesStreamUsage
from gateway.wire.usage import Reported
from tests.integration.servers import gateway
from tests.support.fixtures import FIXTURES, Call, Fixture, load
from tests.support.rewrite_diff import Context, judge, varying_system_lines

REPO = Path(__file__).resolve().parents[2]
NAMES = sorted(path.stem for path in FIXTURES.glob("*.jsonl"))
CALL_TIMEOUT_S = 120.0
# Headers the replay sets itself: the credential, and what httpx computes from the body.
REPLACED = frozenset({"x-api-key", "authorization", "content-length", "host"})

# What fails today, and what it shows: (fixture, check) -> reason.
KNOWN: dict[tuple[str, str], str] = {}


@dataclass
class Replay:
    fixture: Fixture
    direct_status: list[int] = field(default_factory=list)
    gateway_status: list[int] = field(default_factory=list)
    direct_cost: float = 0.0
    gateway_cost: float = 0.0
    # The prompt's part (input, cache reads and writes): what the gateway's rewrites change.
    # Output tokens are the emulator's answer, which reads its directives from the newest
    # user message: a rewrite that moves text there changes it (reported, not asserted).
    direct_prompt_cost: float = 0.0
    gateway_prompt_cost: float = 0.0
    unexplained: list[str] = field(default_factory=list)
    role_changes: list[str] = field(default_factory=list)
    structure_changes: list[str] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)
    usage: list[tuple[str, object]] = field(default_factory=list)  # (route, Usage) per call


def _headers(call: Call, key: str) -> dict[str, str]:
    headers = {k: v for k, v in call.headers if k.lower() not in REPLACED}
    if call.wire == "anthropic":
        headers["x-api-key"] = key
    else:
        headers["authorization"] = f"Bearer {key}"
    return headers


def _reported(call: Call, response: httpx.Response) -> Reported:
    body = response.content
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        parse = {
            "anthropic": usage_from_message,
            "responses": usage_from_response,
            "chat": usage_from_chat,
        }[call.wire]
        return parse(body)
    stream = {"anthropic": StreamUsage, "responses": ResponsesStreamUsage, "chat": ChatStreamUsage}[
        call.wire
    ]()
    stream.feed(body)
    return Reported(stream.model, stream.usage)


def _cost(
    pricing: Pricing, call: Call, response: httpx.Response, result: Replay
) -> tuple[float, float]:
    """The call's cost, and its prompt's part."""
    reported = _reported(call, response)
    assert reported.usage is not None, f"call {call.seq}: no usage in the response"
    result.usage.append((str(response.url.port), reported.usage))
    provider = "anthropic" if call.wire == "anthropic" else "openai"
    model = reported.model or str(call.body.get("model"))
    cost = pricing.cost(provider, model, reported.usage)
    prompt = pricing.cost(provider, model, replace(reported.usage, output=0))
    assert cost is not None, f"call {call.seq}: {model} is not priced"
    assert prompt is not None
    return cost, prompt


def _send(client: httpx.Client, base: str, call: Call, key: str) -> httpx.Response:
    return client.request(
        call.method, base + call.path, headers=_headers(call, key), content=call.raw_body()
    )


class UpstreamLog:
    """The recording proxy's log, read on from where the last read ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_bodies(self) -> list[dict[str, object]]:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        entries = [json.loads(line) for line in data.splitlines() if line.strip()]
        return [e["body"] for e in entries if "method" in e and e["path"].startswith("/v1/")]


@dataclass(frozen=True)
class Upstream:
    """The emulator, and the recording proxy in front of it that the gateways call."""

    emulator_url: str
    proxy_url: str
    log: UpstreamLog


def replay(fixture: Fixture, upstream: Upstream) -> Replay:
    """The fixture's calls direct, then through a gateway of its own (so nothing one fixture
    taught a gateway changes another's replay), each with a key of its own."""
    result = Replay(fixture)
    pricing = Pricing.load()
    context = Context(
        varying_lines=varying_system_lines(call.body for call in fixture.calls),
        today=fixture.meta.get("today"),
    )
    with (
        gateway(upstream.proxy_url) as gateway_url,
        httpx.Client(timeout=CALL_TIMEOUT_S) as client,
    ):
        direct_key, gateway_key = (f"sk-ant-replay-{uuid.uuid4().hex}" for _ in range(2))
        for call in fixture.calls:
            response = _send(client, upstream.emulator_url, call, direct_key)
            result.direct_status.append(response.status_code)
            if response.is_success:
                cost, prompt = _cost(pricing, call, response, result)
                result.direct_cost += cost
                result.direct_prompt_cost += prompt
        upstream.log.new_bodies()  # whatever came before this replay
        for call in fixture.calls:
            response = _send(client, gateway_url, call, gateway_key)
            result.gateway_status.append(response.status_code)
            if not response.is_success:
                continue
            cost, prompt = _cost(pricing, call, response, result)
            result.gateway_cost += cost
            result.gateway_prompt_cost += prompt
            rewrites = {r for r in response.headers.get("x-gateway-rewrites", "").split(",") if r}
            result.rewrites.extend(sorted(rewrites - set(result.rewrites)))
            sent = upstream.log.new_bodies()
            assert len(sent) == 1, f"call {call.seq}: {len(sent)} upstream requests"
            anthropic = call.wire == "anthropic"
            verdict = judge(call.body, sent[0], rewrites, context, anthropic)  # type: ignore[arg-type]
            result.unexplained += [f"call {call.seq}: {d}" for d in verdict.unexplained]
            result.role_changes += [f"call {call.seq}: {d}" for d in verdict.role_changes]
            result.structure_changes += [f"call {call.seq}: {d}" for d in verdict.structure_changes]
    return result


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, emulator_url: str) -> Iterator[Upstream]:
    log = tmp_path_factory.mktemp("replay") / "upstream.jsonl"
    log.touch()
    proxy_port = free_port()
    proxy = [sys.executable, "-m", "tests.support.recording_proxy", "--out", str(log)]
    with (
        server_process(
            [*proxy, "--upstream", emulator_url, "--port", str(proxy_port)],
            f"http://127.0.0.1:{proxy_port}",
            "/emulator/state",
            env={"PYTHONPATH": str(REPO)},  # `tests` importable from any working directory
        ) as proxy_url,
    ):
        yield Upstream(emulator_url, proxy_url, UpstreamLog(log))


@pytest.fixture(scope="module")
def replays(upstream: Upstream) -> dict[str, Replay]:
    """Each fixture's replay, made on first use."""

    class Lazy(dict[str, Replay]):
        def __missing__(self, name: str) -> Replay:
            self[name] = replay(load(FIXTURES / f"{name}.jsonl"), upstream)
            return self[name]

    return Lazy()


def _known(request: pytest.FixtureRequest, name: str, check: str) -> None:
    reason = KNOWN.get((name, check))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def test_fixtures_are_present() -> None:
    assert {"claude-projects", "claude-long", "codex-projects"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_call_is_answered(replays: dict[str, Replay], name: str) -> None:
    result = replays[name]
    assert all(200 <= s < 300 for s in result.direct_status), result.direct_status
    assert all(200 <= s < 300 for s in result.gateway_status), result.gateway_status


@pytest.mark.parametrize("name", NAMES)
def test_upstream_body_is_the_clients_but_for_listed_rewrites(
    replays: dict[str, Replay], name: str, request: pytest.FixtureRequest
) -> None:
    _known(request, name, "unexplained")
    assert replays[name].unexplained == []


@pytest.mark.parametrize("name", NAMES)
def test_text_keeps_its_role(
    replays: dict[str, Replay], name: str, request: pytest.FixtureRequest
) -> None:
    _known(request, name, "role")
    assert replays[name].role_changes == []


@pytest.mark.parametrize("name", NAMES)
def test_structure_around_the_text_is_kept(
    replays: dict[str, Replay], name: str, request: pytest.FixtureRequest
) -> None:
    _known(request, name, "structure")
    assert replays[name].structure_changes == []


@pytest.mark.parametrize("name", NAMES)
def test_no_dearer_through_the_gateway(
    replays: dict[str, Replay], name: str, request: pytest.FixtureRequest
) -> None:
    _known(request, name, "cost")
    result = replays[name]
    print(
        f"{name}: direct ${result.direct_cost:.5f} (prompt ${result.direct_prompt_cost:.5f}),"
        f" gateway ${result.gateway_cost:.5f} (prompt ${result.gateway_prompt_cost:.5f})"
    )
    assert result.direct_prompt_cost > 0
    assert result.gateway_prompt_cost <= result.direct_prompt_cost + 1e-9
