"""The fingerprint's short ways (no system prompt or tools of a body's own, a question's
one or two short strings) digest what the whole walk digests."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from gateway.rewrite import digest
from gateway.rewrite.family import prefix
from gateway.rewrite.fingerprint import Fingerprint, _chained, fingerprint

TENANT = b"12345678"
CONTENTS: tuple[Any, ...] = (
    "hi",
    "",
    "é" * 10,
    "q" * 1023,
    "q" * 2000,
    [{"type": "text", "text": "a"}],
)


def _whole(body: dict[str, Any], stable: int | None, tools: bytes | None) -> Fingerprint:
    tools_digest, stable_digest, size = prefix(body, stable, tools, None)
    family = digest.owned(TENANT, tools_digest + stable_digest)
    chains, tail, first, total = _chained(body.get("messages") or [], family)
    return Fingerprint(
        family,
        digest.owned(TENANT, first),
        str(body.get("model")),
        tools_digest,
        stable_digest,
        tuple(chains),
        tail[0],
        int((size + total) / 4.0),
        TENANT,
    )


def _bodies() -> list[dict[str, Any]]:
    bodies = []
    for system, tools in itertools.product(
        (None, "", [], "be brief", [{"type": "text"}]), (None, [], [{"name": "t"}])
    ):
        for count in range(4):
            for contents in itertools.product(CONTENTS, repeat=count):
                body: dict[str, Any] = {"model": "m"}
                if system is not None:
                    body["system"] = system
                if tools is not None:
                    body["tools"] = tools
                body["messages"] = [
                    {"role": ("user", "assistant")[i % 2], "content": c}
                    for i, c in enumerate(contents)
                ]
                bodies.append(body)
    return bodies


@pytest.mark.parametrize("given", [None, b"[]", b'[{"name":"t"}]'])
@pytest.mark.parametrize("stable", [None, 0, 1])
def test_the_short_ways_digest_what_the_whole_walk_does(
    given: bytes | None, stable: int | None
) -> None:
    for body in _bodies():
        assert fingerprint(body, stable, 4.0, TENANT, given) == _whole(body, stable, given)
        again = fingerprint(body, stable, 4.0, TENANT, given)  # the digests now kept
        assert again == _whole(body, stable, given)
