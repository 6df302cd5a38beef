"""The content digests (rewrite/digest.py), with xxhash and with its pure fallback: the same
fingerprints are equal and the same ones differ either way, the digests of one algorithm
never meet the other's in the shared store, and tenants stay apart whatever collides."""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.cache.memo import Memo
from gateway.cache.shared_prefixes import RedisPrefixes
from gateway.rewrite import digest, tool_json
from gateway.rewrite.fingerprint import Fingerprint, conversation_of, family_of, fingerprint
from gateway.rewrite.memo import CallMemo, Derived

A, B = b"tenant-a", b"tenant-b"
TOOLS = [{"name": "read", "description": "Reads a file.", "input_schema": {"type": "object"}}]
SYSTEM = [{"type": "text", "text": "You are a careful assistant."}]


@pytest.fixture(params=["xxh3", "blake2b"])
def algorithm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test once with xxhash and once as if it were not installed."""
    if request.param == "blake2b":
        monkeypatch.setitem(sys.modules, "xxhash", None)  # its import fails
    importlib.reload(digest)
    try:
        yield digest.ALGORITHM
    finally:
        monkeypatch.undo()
        importlib.reload(digest)


def body(*texts: str, **extra: Any) -> dict[str, Any]:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": [{"type": "text", "text": t}]}
        for i, t in enumerate(texts)
    ]
    return {"model": "claude-sonnet-4-6", "tools": TOOLS, "system": SYSTEM, "messages": messages}


def fp(payload: dict[str, Any], tenant: bytes = A) -> Fingerprint:
    return fingerprint(payload, None, 4.0, tenant)


def test_each_algorithm_is_the_one_named(algorithm: str) -> None:
    data = b"the same bytes"
    if algorithm == "xxh3":
        assert digest.content(data) == pytest.importorskip("xxhash").xxh3_128_digest(data)
    else:
        assert digest.content(data) == hashlib.blake2b(data, digest_size=16).digest()
    assert len(digest.content(data)) == 16


def test_equal_prompts_have_equal_digests_and_changed_layers_differ(algorithm: str) -> None:
    first = fp(body("hello", "hi", "how are you?"))
    assert fp(body("hello", "hi", "how are you?")) == first
    longer = fp(body("hello", "hi", "how are you?", "fine"))
    assert longer.messages[:3] == first.messages
    assert (longer.conversation, longer.family) == (first.conversation, first.family)
    edited = fp(body("hello", "HI", "how are you?"))
    assert edited.messages[0] == first.messages[0]
    assert edited.messages[1:] != first.messages[1:]
    other_tools = fp({**body("hello"), "tools": [*TOOLS, {"name": "write"}]})
    assert other_tools.tools != first.tools
    assert other_tools.family != first.family
    assert other_tools.conversation == first.conversation
    other_system = fp({**body("hello"), "system": "Be brief."})
    assert (other_system.system != first.system, other_system.tools == first.tools) == (True, True)


def test_a_breakpoint_moves_no_digest(algorithm: str) -> None:
    plain = body("hello", "hi")
    marked = body("hello", "hi")
    marked["messages"][1]["content"][0]["cache_control"] = {"type": "ephemeral"}
    marked["system"] = [{**SYSTEM[0], "cache_control": {"type": "ephemeral"}}]
    assert fp(marked).messages == fp(plain).messages
    assert fp(marked).family == fp(plain).family
    assert fp(marked).shared == fp(marked).family  # one breakpoint: the prefix before it
    assert family_of(marked, None, A) == fp(plain).family
    assert conversation_of(marked, A) == fp(plain).conversation


def test_tenants_never_share_a_digest_that_meets_others(algorithm: str) -> None:
    a, b = fp(body("hello"), A), fp(body("hello"), B)
    assert (a.family != b.family, a.conversation != b.conversation) == (True, True)
    assert a.messages[0] != b.messages[0]  # chained from the family
    assert conversation_of({"messages": []}, A) != conversation_of({"messages": []}, B)


def test_the_shared_stores_keys_name_the_algorithm(algorithm: str) -> None:
    prefixes = object.__new__(RedisPrefixes)
    prefixes.prefix = "tg:"
    keys = prefixes._keys(fp(body("hello")))
    assert [key.split(":")[:4] for key in keys] == [
        ["tg", "prefix", algorithm, "c"],
        ["tg", "prefix", algorithm, "f"],
    ]


def test_a_digest_finds_a_tools_identity_but_the_bytes_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memo finds a tool's identity by its bytes' digest, and takes it only for the same
    bytes: with every digest colliding, each tool still gets its own identity."""
    monkeypatch.setattr(digest, "content", lambda data: b"\0" * 16)
    tools = [{"name": name, "description": name * 2000} for name in ("a", "b")]
    memo = Memo()
    for _ in range(3):  # derived, then found (or not) in the memo
        call = CallMemo(memo, A)
        identities = [tool_json._identity(t, orjson.dumps(t), call) for t in tools]
        assert identities == [tool_json.identity(t) for t in tools]
        memo.learn(Derived(A, tuple(call._new)))
