"""The benchmarks' bodies by --body name: one body each, or a recorded session's turns in the
order the client sent them (bench/measure/bodies.py), and the load sending them in turn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from tests.support.fixtures import FIXTURES, load

BENCH = Path(__file__).resolve().parents[3] / "bench"
if str(BENCH) not in sys.path:  # the bench scripts' own imports (harness, measure)
    sys.path.insert(0, str(BENCH))

from harness.load import Probe, wrk_script  # noqa: E402
from harness.proxies import Server  # noqa: E402
from measure import bodies  # noqa: E402

SESSIONS = [("claude-code-session", "claude-long"), ("codex-session", "codex-projects")]


def test_the_sessions_are_bodies_of_their_own_and_all_keeps_its_six() -> None:
    assert {"claude-code-session", "codex-session"} <= set(bodies.names())
    assert not set(bodies.SESSIONS) & set(bodies.SUMMARY_BODIES)
    assert bodies.route("codex-session") == bodies.RESPONSES
    assert bodies.route("claude-code-session") == bodies.MESSAGES


@pytest.mark.parametrize(("name", "fixture"), SESSIONS)
def test_a_session_is_every_recorded_turn_in_order(name: str, fixture: str) -> None:
    calls = load(FIXTURES / f"{fixture}.jsonl").calls
    plain, stream = bodies.body_lists(name)
    assert stream == [call.raw_body() for call in calls]
    assert len(plain) == len(stream) > 1
    sizes = [len(body) for body in stream]
    assert sizes[1] > sizes[0]  # the second turn is the first plus what the session added
    for json_body, stream_body in zip(plain, stream, strict=True):
        sent = json.loads(stream_body)
        assert sent["stream"] is True
        assert json.loads(json_body) == {**sent, "stream": False}
        assert len(json_body) == len(stream_body) + 1  # the flag alone, byte for byte


@pytest.mark.parametrize(
    "name", ["filler", "filler-115k", "claude-code-late-turn", "codex-first-turn"]
)
def test_a_single_body_is_its_pair(name: str) -> None:
    plain, stream = bodies.body_pair(name)
    assert bodies.body_lists(name) == ([plain], [stream])
    assert bodies.sizes(([plain], [stream])) == f"{len(plain):,} / {len(stream):,}"


def test_the_report_gives_a_sessions_turns_and_sizes() -> None:
    assert bodies.sizes(([b"{}", b"{ }"], [b"{1}", b"{123}"])) == "2 turns, 3 to 5 (stream)"


def test_a_session_with_a_call_elsewhere_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"model":"claude-haiku-4-5","stream":true}'
    calls = [SimpleNamespace(path="/v1/messages?beta=true", raw_body=lambda: body)]
    calls.append(SimpleNamespace(path="/v1/messages/count_tokens", raw_body=lambda: body))
    fake = SimpleNamespace(calls=calls)
    monkeypatch.setattr("tests.support.fixtures.load", lambda _path: fake)
    monkeypatch.setitem(bodies.SESSIONS, "claude-code-mixed", "claude-long")
    bodies.session_bodies.cache_clear()
    try:
        with pytest.raises(ValueError, match="count_tokens"):
            bodies.session_bodies("claude-code-mixed")
    finally:
        bodies.session_bodies.cache_clear()


def test_the_probe_sends_the_turns_in_order_across_its_connections() -> None:
    server = Server("gateway", 1, cast(subprocess.Popen[bytes], None))
    probe = Probe(server, [b"one", b"two", b"three"], "/v1/responses")
    sent = [next(probe._next) for _ in range(7)]
    assert [request.rsplit(b"\r\n\r\n", 1)[1] for request in sent] == [
        b"one",
        b"two",
        b"three",
        b"one",
        b"two",
        b"three",
        b"one",
    ]
    assert all(request.startswith(b"POST /v1/responses HTTP/1.1\r\n") for request in sent)
    assert b"content-length: 5\r\n" in sent[2]


def test_wrk_sends_the_turns_in_order() -> None:
    server = Server("gateway", 1, cast(subprocess.Popen[bytes], None))
    script = wrk_script(server, [b"turn-0", b"turn-1", b"turn-2"], path="/v1/responses")
    assert script.index("turn-0") < script.index("turn-1") < script.index("turn-2")
    assert "bodies[sent % #bodies + 1]" in script  # one counter for every connection


def _texts(value: object) -> list[str]:
    """The texts a variant tags: every string under a text, content or output key."""
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if not isinstance(value, dict):
        return []
    return [
        text
        for key, item in value.items()
        for text in ([item] if key in bodies.TAGGED and isinstance(item, str) else _texts(item))
    ]


@pytest.mark.parametrize(("name", "fixture"), SESSIONS)
def test_a_conversation_variant_tags_what_the_conversation_adds_and_nothing_before(
    name: str, fixture: str
) -> None:
    turns = bodies.session_bodies(name)
    one, two = (bodies.conversation_variant(turns, tag) for tag in (1, 2))
    key = "messages" if name.startswith("claude") else "input"
    lead = len(json.loads(turns[0])[key]) - 1  # the first turn's items before its prompt's
    for raw, a, b in zip(turns, one, two, strict=True):
        sent, ones, twos = (json.loads(x) for x in (raw, a, b))
        # The system prompt, the tools and the rest of the body are as recorded.
        assert {k: v for k, v in ones.items() if k != key} == {
            k: v for k, v in sent.items() if k != key
        }
        items = ones[key]
        assert len(items) == len(sent[key])
        # What every conversation sends first is shared; its prompt and all after differ.
        assert items[:lead] == sent[key][:lead]
        assert [t.endswith(" [1]") for t in _texts(items[lead])][-1:] == [True]
        assert sum(t.endswith(" [1]") for t in _texts(items[lead])) == 1
        added = _texts(items[lead + 1 :])
        assert all(t.endswith(" [1]") for t in added)
        assert _texts(twos[key][lead + 1 :]) == [t[: -len(" [1]")] + " [2]" for t in added]
    # Each turn repeats as much of the one before it as the recorded turns do.
    for i in range(len(turns) - 1):
        assert _shared(one[i], one[i + 1]) >= _shared(turns[i], turns[i + 1]) - 8


def _shared(a: bytes, b: bytes) -> int:
    """The length of the bytes `a` and `b` begin with alike."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
