"""The prefix registry shared between replicas: write-behind and read-through, in Redis.

The registry (registry.py) stays the synchronous, in-memory view the rewrite pipeline
reads. Around it, per call and always after the client has its response, one round trip
(a Lua script) exchanges this call for the stored ones: it reads the last call of the
conversation and of the family, adopted where newer than the local ones (so a turn
answered by another replica is the one this call is compared with), and writes this call
in their place where it is newer, each entry expiring after 2 hours.

    prefix:<algorithm>:c:<conversation digest>   HASH  t (call start, ms), v (the Seen, JSON)
    prefix:<algorithm>:f:<family digest>         HASH  the same, per prompt family

<algorithm> is rewrite/digest.py's ALGORITHM (`xxh3`, or `blake2b` where the xxhash
package is missing): the digests a Seen holds are comparable only with digests of the same
algorithm, so replicas that digest differently (an old version, a missing package) never
read each other's entries. The keys' digests are `owned` (blake2b, keyed by the tenant):
one tenant's content never reaches another's keys, whatever collides under xxh3.

Without Redis there is nothing to share: the registry alone is the in-memory version.
"""

from __future__ import annotations

from typing import Protocol

import orjson
from redis.asyncio import Redis

from gateway.cache.registry import PrefixRegistry, Seen
from gateway.rewrite import digest
from gateway.rewrite.fingerprint import Fingerprint
from gateway.state.health import StateHealth, StoreUnreachable

ENTRY_TTL_S = 2 * 3600  # past a 1h cache TTL and the "ttl_expired" verdict it allows

EXCHANGE = """
local found = {}
for i = 1, #KEYS do
  local stored = redis.call('HMGET', KEYS[i], 't', 'v')
  found[i] = stored[2] or false
  local t = tonumber(stored[1])
  if not t or t < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[i], 't', ARGV[1], 'v', ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
  end
end
return found
"""


class SharedPrefixes(Protocol):
    async def exchange(self, fp: Fingerprint, seen: Seen, registry: PrefixRegistry) -> None:
        """Adopts the shared last calls of `fp`'s conversation and family where newer, and
        shares `seen` (this call) in their place where it is newer."""


class RedisPrefixes:
    def __init__(self, client: Redis, health: StateHealth, prefix: str) -> None:
        self.client = client
        self.health = health
        self.prefix = prefix
        self._exchange = client.register_script(EXCHANGE)

    def _keys(self, fp: Fingerprint) -> list[str]:
        p = f"{self.prefix}prefix:{digest.ALGORITHM}:"
        return [f"{p}c:{fp.conversation.hex()}", f"{p}f:{fp.family.hex()}"]

    async def exchange(self, fp: Fingerprint, seen: Seen, registry: PrefixRegistry) -> None:
        keys = self._keys(fp)
        args: list[bytes | int] = [int(seen.started * 1000), _encode(seen), ENTRY_TTL_S]
        try:
            found = await self.health.run(
                "prefix_exchange", lambda: self._exchange(keys=keys, args=args)
            )
        except StoreUnreachable:
            return  # the local view alone: a miss may be called cold instead of its cause
        conversation, family = (raw or None for raw in found)
        registry.adopt(fp, _seen(conversation), _seen(family))


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
