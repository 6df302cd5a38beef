"""A recorded session through the gateway in-process, its bodies parsed by reusing the
tenant's earlier turns (wire/reparse.py) and without: the provider is sent the same bytes,
turn by turn. The reused parse shares objects between calls, so a consumer that mutated one
(a stage, ask_usage, a fallback's body) would show here as a later turn's different bytes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.endpoint.model_call import ModelCall
from gateway.endpoint.prepared import tenant
from gateway.server.edge import Edge
from tests.support.fixtures import FIXTURES, load
from tests.unit.endpoint.harness import ANTHROPIC, OPENAI, anthropic_message, json_reply, run

SESSIONS = {
    "claude-long": ("/v1/messages", ANTHROPIC),
    "claude-projects": ("/v1/messages", ANTHROPIC),
    "codex-projects": ("/v1/responses", OPENAI),
}


def _without_reuse(app: Edge) -> None:
    for endpoint in app.endpoints.values():
        if isinstance(endpoint, ModelCall):
            endpoint.parts = replace(endpoint.parts, turns=None)


@pytest.mark.parametrize("session", list(SESSIONS))
def test_the_upstream_bytes_are_the_same_with_and_without_reuse(
    tmp_path: Path, session: str
) -> None:
    path, auth = SESSIONS[session]
    headers = {**auth, "content-type": "application/json"}
    calls = load(FIXTURES / f"{session}.jsonl").calls
    # Each turn twice: the benchmark's identical repeat, then the next turn grows it.
    bodies = [raw for call in calls for raw in (call.raw_body(),) * 2]
    requests = [("POST", path, headers, body) for body in bodies]
    reply = [lambda _: json_reply({**anthropic_message(), "stream": False})]
    runs = {}
    apps: list[Edge] = []
    for reuse in (True, False):
        before = apps.append if reuse else _without_reuse
        (tmp_path / str(reuse)).mkdir()
        runs[reuse] = run(tmp_path / str(reuse), reply, requests, before)
    sent = {reuse: [r.content for r in found.upstream.requests] for reuse, found in runs.items()}
    assert len(sent[True]) == len(bodies)
    assert sent[True] == sent[False]
    assert all(r.status_code == 200 for r in runs[True].responses)
    (endpoint,) = {e for e in apps[0].endpoints.values() if isinstance(e, ModelCall)} & {
        apps[0].endpoints["POST", path]
    }
    assert isinstance(endpoint, ModelCall)
    assert endpoint.parts.turns is not None
    assert endpoint.parts.turns.held(tenant(headers_of(headers)))  # reuse was on
    assert any(b != raw for b, raw in zip(sent[True], bodies, strict=True))  # and rewrote


def headers_of(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]
