"""The request bodies bench/overhead.py sends, by `--body` name: a one-line question, the same
question under 115 KB of seeded prose (the size of Claude Code's first turn, text the
gateway's rules have nothing to learn from), and the recorded Claude Code and Codex bodies
(tests/support/fixtures.py `bench_bodies()`); Codex's go to the Responses API."""

from __future__ import annotations

import functools
import json
import random
import sys

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


@functools.cache
def recorded_bodies() -> dict[str, bytes]:
    """Real-size bodies from the recorded fixtures: a Claude Code session's first turn
    (~116 KB) and a late turn (300 KB+), a Codex session's first and largest (~42 KB),
    streaming, as the clients sent them."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.fixtures import bench_bodies

    return bench_bodies()


def names() -> list[str]:
    return [FILLER, FILLER_115K, *recorded_bodies()]


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
    parsed = json.loads(stream)
    head = stream.rsplit(b'"stream":true', 1)
    plain = b'"stream":false'.join(head)
    if parsed.get("stream") is not True or len(head) != 2 or json.loads(plain)["stream"]:
        plain = json.dumps({**parsed, "stream": False}, separators=(",", ":")).encode()
    return plain, stream


def model(body: bytes) -> str:
    model_id: str = json.loads(body)["model"]
    return model_id
