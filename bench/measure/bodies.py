"""The request bodies bench/overhead.py sends, by `--body` name: a one-line question, the same
question under 115 KB of seeded prose (the size of Claude Code's first turn, text the
gateway's rules have nothing to learn from), and the recorded Claude Code and Codex bodies
(tests/support/fixtures.py `bench_bodies()`); Codex's go to the Responses API.

A session body (`claude-code-session`, `codex-session`) is not one body but a recorded
session's request bodies in order, as the client sent them, each turn the previous one plus
what the conversation added: the load sends turn i on call i, cycling. Resending one body byte
for byte lets every reuse path of the gateway (an earlier parse, results found by the identity
of shared parts) hit fully, which a real conversation never does; a session replay does not.
Every call of both recorded sessions is a main-model streaming call on the route the body set
is sent to (Claude Code's `/v1/messages?beta=true`, sent to `/v1/messages`; Codex's
`/v1/responses`: two conversations of five turns, the second starting over), so all are kept;
`session_bodies` refuses a call on another path or model rather than drop it silently."""

from __future__ import annotations

import functools
import json
import random
import sys
from collections.abc import Sequence
from typing import Any

import orjson
from harness.proxies import READY_BODY, REPO
from workloads.prose import Prose

BODY = READY_BODY  # 89 bytes: a one-line question
FILLER = "filler"
FILLER_115K = "filler-115k"
FILLER_115K_CHARS = 115_000
SUMMARY_BODIES = (
    FILLER,
    FILLER_115K,
    "claude-code-first-turn",
    "claude-code-late-turn",
    "codex-first-turn",
    "codex-late-turn",
)
MESSAGES, RESPONSES = "/v1/messages", "/v1/responses"
# (JSON bodies, streaming bodies) of a --body name, sent in this order, cycling.
Pair = tuple[list[bytes], list[bytes]]
SESSIONS = {"claude-code-session": "claude-long", "codex-session": "codex-projects"}


@functools.cache
def recorded_bodies() -> dict[str, bytes]:
    """Real-size bodies from the recorded fixtures: a Claude Code session's first turn
    (~116 KB) and a late turn (300 KB+), a Codex session's first and largest (~42 KB),
    streaming, as the clients sent them."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.fixtures import bench_bodies

    return bench_bodies()


@functools.cache
def session_bodies(name: str) -> tuple[bytes, ...]:
    """The request bodies of session `name` (a key of SESSIONS) in the order the client sent
    them, streaming, as sent; every one on the route `name` is sent to, with one model."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.fixtures import FIXTURES, load

    calls = load(FIXTURES / f"{SESSIONS[name]}.jsonl").calls
    models = {model(call.raw_body()) for call in calls}
    paths = {call.path.split("?")[0] for call in calls}
    if paths != {route(name)} or len(models) != 1:
        raise ValueError(f"{name}: calls on {sorted(paths)} with {sorted(models)}")
    return tuple(call.raw_body() for call in calls)


def names() -> list[str]:
    return [FILLER, FILLER_115K, *recorded_bodies(), *SESSIONS]


def route(name: str) -> str:
    """The API path a body is sent to: Codex's are Responses calls, the rest Messages."""
    return RESPONSES if name.startswith("codex") else MESSAGES


def filler(chars: int) -> bytes:
    """The one-line question with a system prompt of `chars` characters of seeded prose."""
    system = Prose(random.Random(16), "support").text(chars // 4) if chars else None
    body = json.loads(BODY)
    if system:
        body = {**body, "system": system}
    return json.dumps(body, separators=(",", ":")).encode()


def with_stream(body: bytes) -> bytes:
    return body[:-1] + b',"stream":true}'


def body_pair(name: str) -> tuple[bytes, bytes]:
    """(JSON body, streaming body) for --body `name`. A recorded body is the stream one, as
    sent; its JSON one is the same bytes with the top-level `"stream":true` made false."""
    if name in (FILLER, FILLER_115K):
        plain = BODY if name == FILLER else filler(FILLER_115K_CHARS)
        return plain, with_stream(plain)
    stream = recorded_bodies()[name]
    return as_json(stream), stream


def body_lists(name: str) -> Pair:
    """(JSON bodies, streaming bodies) for --body `name`, in the order they are sent: a
    session's turns, or body_pair's one body."""
    if name in SESSIONS:
        streams = list(session_bodies(name))
        return [as_json(stream) for stream in streams], streams
    plain, stream = body_pair(name)
    return [plain], [stream]


# The fields of a conversation's items whose text a variant tags (conversation_variant).
TAGGED = ("text", "content", "output")


def conversation_variant(bodies: Sequence[bytes], tag: int) -> list[bytes]:
    """A session's turns as another conversation with the same agent in the same project
    would send them: the texts the conversation adds end in `[tag]` (the user's prompt, the
    last text of the first turn's last item, and every text of the items the later turns
    add: tool results, answers, prompts), while what every conversation of that agent sends
    first (the system prompt, the tools, the first turn's leading items: instructions files,
    environment) is left as it is. A turn still repeats the one before it byte for byte, but
    no text a turn adds is one another variant sent: replaying one session again and again
    otherwise finds each new item's text already learned from the pass before, which a real
    conversation never does. Serialized compactly (orjson), as the clients send."""
    marker = f" [{tag}]"

    def tagged(value: Any, last_only: bool = False) -> tuple[Any, bool]:
        """(`value` with its texts tagged, or only its last text; whether one was)."""
        if isinstance(value, str):
            return value, False
        if isinstance(value, list):
            items, places = list(value), range(len(value))
        elif isinstance(value, dict):
            items, places = dict(value), list(value)  # type: ignore[assignment]
        else:
            return value, False
        found = False
        for place in reversed(places) if last_only else places:
            item = items[place]
            if place in TAGGED and isinstance(item, str):
                items[place], done = item + marker, True
            else:
                items[place], done = tagged(item, last_only)
            found = found or done
            if last_only and done:
                break
        return items, found

    first = orjson.loads(bodies[0])
    key = "messages" if isinstance(first.get("messages"), list) else "input"
    leading = len(first.get(key) or ()) - 1  # the first turn's items before its prompt's
    out = []
    for raw in bodies:
        body = orjson.loads(raw)
        items = body.get(key)
        if isinstance(items, list) and len(items) > leading >= 0:
            prompt = tagged(items[leading], last_only=True)[0]
            body[key] = [*items[:leading], prompt, *tagged(items[leading + 1 :])[0]]
        out.append(orjson.dumps(body))
    return out


def as_json(stream: bytes) -> bytes:
    """A recorded streaming body with its top-level `"stream":true` made false, byte for byte
    where the last `"stream":true` is that key, else re-serialized."""
    parsed = json.loads(stream)
    head = stream.rsplit(b'"stream":true', 1)
    plain = b'"stream":false'.join(head)
    if parsed.get("stream") is not True or len(head) != 2 or json.loads(plain)["stream"]:
        plain = json.dumps({**parsed, "stream": False}, separators=(",", ":")).encode()
    return plain


def sizes(pair: Pair) -> str:
    """The report's bytes of a body: JSON / stream, or a session's turns and their range."""
    plain, stream = pair
    if len(plain) == 1:
        return f"{len(plain[0]):,} / {len(stream[0]):,}"
    low, high = min(map(len, stream)), max(map(len, stream))
    return f"{len(stream)} turns, {low:,} to {high:,} (stream)"


def model(body: bytes) -> str:
    model_id: str = json.loads(body)["model"]
    return model_id
