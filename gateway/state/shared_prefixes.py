"""The prefix registry shared between replicas: write-behind and read-through, in Redis.

The registry (registry.py) stays the synchronous, in-memory view the rewrite pipeline
reads. Around it, per call and always after the client has its response:
- recall: before the registry judges a call, the last call of its conversation and of
  its family are read from Redis (one round trip) and adopted where newer than the local
  ones, so a turn answered by another replica is the one this call is compared with;
- publish: after, this call is written there (a task, never awaited by the request), each
  entry only if it is newer than the one stored (a Lua check), expiring after 2 hours.

    prefix:c:<conversation digest>   HASH  t (call start, ms), v (the Seen, JSON)
    prefix:f:<family digest>         HASH  the same, per prompt family

Without Redis there is nothing to share: the registry alone is the in-memory version.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from gateway.rewrite.fingerprint import Fingerprint
from gateway.state.health import StateHealth, StoreUnreachable
from gateway.state.registry import PrefixRegistry, Seen

ENTRY_TTL_S = 2 * 3600  # past a 1h cache TTL and the "ttl_expired" verdict it allows

PUBLISH = """
for i = 1, #KEYS do
  local t = tonumber(redis.call('HGET', KEYS[i], 't'))
  if not t or t < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[i], 't', ARGV[1], 'v', ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
  end
end
return 1
"""


class SharedPrefixes(Protocol):
    async def recall(self, fp: Fingerprint, registry: PrefixRegistry) -> None:
        """Adopts the shared last calls of `fp`'s conversation and family, if newer."""

    def publish(self, fp: Fingerprint, seen: Seen) -> None:
        """Shares this call, in the background."""


class RedisPrefixes:
    def __init__(self, client: Redis, health: StateHealth, prefix: str) -> None:
        self.client = client
        self.health = health
        self.prefix = prefix
        self._publish = client.register_script(PUBLISH)
        self._pending: set[asyncio.Task[None]] = set()

    def _keys(self, fp: Fingerprint) -> list[str]:
        p = self.prefix
        return [f"{p}prefix:c:{fp.conversation.hex()}", f"{p}prefix:f:{fp.family.hex()}"]

    async def recall(self, fp: Fingerprint, registry: PrefixRegistry) -> None:
        keys = self._keys(fp)

        async def fetch() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, "v")
                return await pipe.execute()

        try:
            conversation, family = await self.health.run("prefix_recall", fetch)
        except StoreUnreachable:
            return  # the local view alone: a miss may be called cold instead of its cause
        registry.adopt(fp, _seen(conversation), _seen(family))

    def publish(self, fp: Fingerprint, seen: Seen) -> None:
        task = asyncio.get_running_loop().create_task(self._send(fp, seen))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, fp: Fingerprint, seen: Seen) -> None:
        args: list[bytes | int] = [int(seen.started * 1000), _encode(seen), ENTRY_TTL_S]
        keys = self._keys(fp)
        # Counted when it fails; the conversation's next call publishes again.
        with contextlib.suppress(StoreUnreachable):
            await self.health.run("prefix_publish", lambda: self._publish(keys=keys, args=args))


def _encode(seen: Seen) -> bytes:
    fp = seen.fingerprint
    return orjson.dumps(
        {
            "family": fp.family.hex(),
            "conversation": fp.conversation.hex(),
            "model": fp.model,
            "tools": fp.tools.hex(),
            "system": fp.system.hex(),
            "messages": [m.hex() for m in fp.messages],
            "shared": fp.shared.hex(),
            "prompt_tokens": fp.prompt_tokens,
            "started": seen.started,
            "answered": seen.answered,
            "cached_tokens": seen.cached_tokens,
            "message_id": seen.message_id,
        }
    )


def _seen(raw: bytes | None) -> Seen | None:
    if raw is None:
        return None
    try:
        d = orjson.loads(raw)
        fp = Fingerprint(
            family=bytes.fromhex(d["family"]),
            conversation=bytes.fromhex(d["conversation"]),
            model=d["model"],
            tools=bytes.fromhex(d["tools"]),
            system=bytes.fromhex(d["system"]),
            messages=tuple(bytes.fromhex(m) for m in d["messages"]),
            shared=bytes.fromhex(d["shared"]),
            prompt_tokens=int(d["prompt_tokens"]),
        )
        return Seen(fp, d["started"], d["answered"], d["cached_tokens"], d["message_id"])
    except (ValueError, KeyError, TypeError):
        return None  # written by another version: ignored
