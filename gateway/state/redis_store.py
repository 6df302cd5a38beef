"""Gateway keys and the ledger in Redis: several workers and replicas share them.

Key layout (every key starts with `state.key_prefix`, "tollgate:" by default):

    keys                          HASH  key name -> digest (the index `gateway keys` lists)
    key:<digest>                  HASH  the key's record (GatewayKey.to_fields), no expiry
    spend:key:<name>:d<YYYYMMDD>  INT   nano-dollars spent (and reserved) that UTC day, 2 days
    spend:key:<name>:m<YYYYMM>    INT   ... that month, 35 days
    spend:team:<team>:d…/m…       INT   the same for the key's team
    rate:<name>:<minute>          HASH  r (requests), t (tokens) in that minute, 2 minutes
    call:<id>                     STR   a call's reservation, then "s" once settled, 1 hour:
                                        a retried ADMIT or SETTLE (its reply was late)
                                        changes nothing twice

Read-modify-write happens in Lua scripts (ADMIT, SETTLE, CREATE, REVOKE), atomic on the
server, so concurrent replicas never double-spend or lose an increment. ADMIT derives
the spend and rate keys from the record it reads: one round trip, for a single Redis
(or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.state.health import StateHealth
from gateway.state.keys import GatewayKey, KeyExists
from gateway.state.ledger import (
    PERIOD_NAMES,
    WINDOW_S,
    Admission,
    Period,
    TeamBudget,
    counter_names,
    four,
    retry_after,
)

DAY_TTL_S = 2 * 86_400
MONTH_TTL_S = 35 * 86_400
WINDOW_TTL_MS = 2 * WINDOW_S * 1000 + 1000
CALL_TTL_S = 3600  # a call's reservation marker: longer than any call, and its settle

ADMIT = """
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return {'unknown_key'} end
if ARGV[5] == '0' then return {'ok', '', 0, 0, 0, 0, 0, rec} end
local r = {}
for i = 1, #rec, 2 do r[rec[i]] = rec[i + 1] end
local p = ARGV[1]
local counters = {p .. 'spend:key:' .. r.name .. ':' .. ARGV[2],
                  p .. 'spend:key:' .. r.name .. ':' .. ARGV[3]}
local limits = {tonumber(r.daily_nano) or 0, tonumber(r.monthly_nano) or 0, 0, 0}
if r.team ~= nil and r.team ~= '' then
  counters[3] = p .. 'spend:team:' .. r.team .. ':' .. ARGV[2]
  counters[4] = p .. 'spend:team:' .. r.team .. ':' .. ARGV[3]
  local team = cjson.decode(ARGV[7])[r.team]
  if team then limits[3] = team[1]; limits[4] = team[2] end
end
local got = redis.call('MGET', unpack(counters))
local s = {}
for i = 1, 4 do s[i] = tonumber(got[i]) or 0 end
local names = {'daily', 'monthly', 'team_daily', 'team_monthly'}
local marker = ARGV[11] ~= '' and (p .. 'call:' .. ARGV[11]) or nil
if marker then
  local held = redis.call('GET', marker)
  if held then return {'ok', '', tonumber(held) or 0, s[1], s[2], s[3], s[4], rec} end
end
local reserve = tonumber(ARGV[6])
for i = 1, 4 do
  if limits[i] > 0 and (s[i] >= limits[i] or s[i] + reserve > limits[i]) then
    return {'spend_limit', names[i], 0, s[1], s[2], s[3], s[4], rec}
  end
end
local function wait(prev, cur, elapsed, room)
  if cur <= room then
    if prev <= 0 then return 0 end
    return math.max(0, 1 - elapsed - (room - cur) / prev)
  end
  return (1 - elapsed) + (1 - math.max(room, 0) / cur)
end
local now, window = tonumber(ARGV[4]), 60000
local index = math.floor(now / window)
local elapsed = (now - index * window) / window
local wc = p .. 'rate:' .. r.name .. ':' .. index
local cur = redis.call('HMGET', wc, 'r', 't')
local prev = redis.call('HMGET', p .. 'rate:' .. r.name .. ':' .. (index - 1), 'r', 't')
local cr, ct = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0
local pr, pt = tonumber(prev[1]) or 0, tonumber(prev[2]) or 0
local weight = 1 - elapsed
local rpm, tpm = tonumber(r.rpm_limit) or 0, tonumber(r.tpm_limit) or 0
if rpm > 0 and pr * weight + cr + 1 > rpm then
  local w = math.ceil(wait(pr, cr, elapsed, rpm - 1) * 1000000)
  return {'rate_limit', 'requests per minute', w, s[1], s[2], s[3], s[4], rec}
end
if tpm > 0 and pt * weight + ct >= tpm then
  local w = math.ceil(wait(pt, ct, elapsed, tpm - 1) * 1000000)
  return {'rate_limit', 'tokens per minute', w, s[1], s[2], s[3], s[4], rec}
end
redis.call('HINCRBY', wc, 'r', 1)
redis.call('PEXPIRE', wc, ARGV[10])
for i = 1, #counters do
  redis.call('INCRBY', counters[i], reserve)
  redis.call('EXPIRE', counters[i], (i % 2 == 1) and ARGV[8] or ARGV[9])
end
if marker then redis.call('SET', marker, reserve, 'EX', ARGV[12]) end
return {'ok', '', reserve, s[1], s[2], s[3], s[4], rec}
"""

SETTLE = """
local held = nil
if KEYS[2] ~= '' then held = redis.call('GET', KEYS[2]) end
if held ~= 's' then
  local delta = tonumber(ARGV[1]) - (held and tonumber(held) or tonumber(ARGV[7]))
  for i = 3, #KEYS do
    redis.call('INCRBY', KEYS[i], delta)
    redis.call('EXPIRE', KEYS[i], (i % 2 == 1) and ARGV[3] or ARGV[4])
  end
  if tonumber(ARGV[2]) > 0 then
    redis.call('HINCRBY', KEYS[1], 't', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
  end
  if KEYS[2] ~= '' then redis.call('SET', KEYS[2], 's', 'EX', ARGV[6]) end
end
local out = {}
for i = 3, #KEYS do out[#out + 1] = tonumber(redis.call('GET', KEYS[i])) or 0 end
return out
"""

CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
"""

REVOKE = """
local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then return 0 end
redis.call('DEL', ARGV[2] .. 'key:' .. digest)
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""


def connect(url: str, timeout_s: float, max_connections: int, pool_wait_s: float) -> Redis:
    """A pooled client that fails fast: short socket timeouts and no retries of its own
    (StateHealth decides when to try again). Past `max_connections` a call waits for a free
    connection (StateHealth queues it, for up to `pool_wait_s`) rather than failing as if
    Redis were down."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_wait_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


class RedisKeyStore:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._create = client.register_script(CREATE)
        self._revoke = client.register_script(REVOKE)

    async def create(self, key: GatewayKey) -> None:
        pairs = [item for field in key.to_fields().items() for item in field]
        keys = [self.prefix + "keys", self.prefix + "key:" + key.digest]
        if not await self._create(keys=keys, args=[key.name, key.digest, *pairs]):
            raise KeyExists(key.name)

    async def list(self) -> list[GatewayKey]:
        index = await self.client.hgetall(self.prefix + "keys")
        async with self.client.pipeline(transaction=False) as pipe:
            for key_digest in index.values():
                pipe.hgetall(self.prefix + "key:" + _text(key_digest))
            records = await pipe.execute()
        keys = [GatewayKey.from_fields(record) for record in records if record]
        return sorted(keys, key=lambda k: k.name)

    async def revoke(self, name: str) -> bool:
        return bool(await self._revoke(keys=[self.prefix + "keys"], args=[name, self.prefix]))


class RedisLedger:
    """The ledger's Redis implementation; each call bounded and counted by StateHealth."""

    def __init__(
        self,
        client: Redis,
        health: StateHealth,
        prefix: str,
        teams: dict[str, TeamBudget],
    ) -> None:
        self.client = client
        self.health = health
        self.prefix = prefix
        # Built once: every ADMIT carries the team budgets (a few bytes per team).
        self.teams_json = json.dumps({t: [b.daily_nano, b.monthly_nano] for t, b in teams.items()})
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)

    async def admit(
        self,
        key_digest: str,
        now: float,
        *,
        count: bool = True,
        reserve_nano: int = 0,
        call_id: str = "",
    ) -> Admission:
        period = Period.at(now)
        args: list[str | int] = [
            self.prefix, period.day, period.month, int(now * 1000), "1" if count else "0",
            reserve_nano, self.teams_json, DAY_TTL_S, MONTH_TTL_S, WINDOW_TTL_MS,
            call_id, CALL_TTL_S,
        ]  # fmt: skip
        keys = [self.prefix + "key:" + key_digest]
        reply = await self.health.run("admit", lambda: self._admit(keys=keys, args=args))
        return _admission(cast(list[Any], reply), period)

    async def settle(
        self,
        key: GatewayKey,
        period: Period,
        reserved_nano: int,
        cost_nano: int,
        tokens: int,
        now: float,
        call_id: str = "",
    ) -> tuple[int, int, int, int]:
        p = self.prefix
        keys = [
            f"{p}rate:{key.name}:{int(now * 1000) // (WINDOW_S * 1000)}",
            f"{p}call:{call_id}" if call_id else "",
            *(p + name for name in counter_names(key, period)),
        ]
        args = [cost_nano, tokens, DAY_TTL_S, MONTH_TTL_S, WINDOW_TTL_MS, CALL_TTL_S]
        args.append(reserved_nano)
        reply = await self.health.run("settle", lambda: self._settle(keys=keys, args=args))
        return four(cast(list[int], reply))

    async def spent(self, key: GatewayKey, now: float) -> tuple[int, int, int, int]:
        names = [self.prefix + name for name in counter_names(key, Period.at(now))]
        values = await self.health.run("spent", lambda: self.client.mget(names))
        return four([int(v) if v else 0 for v in values])


def _admission(reply: list[Any], period: Period) -> Admission:
    if reply[0] == b"unknown_key":
        return Admission(None, "unknown_key")
    status, reason, number = reply[0].decode(), reply[1].decode(), int(reply[2])
    raw = reply[7]
    key = GatewayKey.from_fields(dict(zip(raw[::2], raw[1::2], strict=True)))
    spent = four([int(v) for v in reply[3:7]])
    if status == "ok":
        return Admission(key, reserved_nano=number, spent_nano=spent, period=period)
    if status == "spend_limit":
        return Admission(key, "spend_limit", reason, spent_nano=spent, period=period)
    return Admission(key, "rate_limit", reason, retry_after(number / 1_000_000), period=period)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = ["PERIOD_NAMES", "RedisKeyStore", "RedisLedger", "connect"]
