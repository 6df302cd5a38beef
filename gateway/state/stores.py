"""Which state implementation runs: Redis when `state.redis_url` (or REDIS_URL) is set,
else memory. Built once at start by the app and by `gateway keys`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from gateway.cache.shared_prefixes import RedisPrefixes, SharedPrefixes
from gateway.settings import StateSettings
from gateway.state.health import StateHealth, StoreUnreachable
from gateway.state.keys import KeyStore, MemoryKeyStore, to_nano
from gateway.state.ledger import Ledger, MemoryLedger, TeamBudget
from gateway.state.redis_store import RedisKeyStore, RedisLedger, connect


@dataclass(slots=True)
class State:
    keys: KeyStore
    ledger: Ledger
    shared_prefixes: SharedPrefixes | None = None
    health: StateHealth | None = None
    client: Redis | None = None

    @property
    def where(self) -> str:
        return "redis" if self.client is not None else "memory"

    async def usable(self) -> bool:
        """For readiness: Redis answers a PING (in time); memory always does."""
        if self.client is None or self.health is None:
            return True
        client = self.client
        try:
            await self.health.run("ping", lambda: client.ping())
        except StoreUnreachable:
            return False
        return True

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def open_state(settings: StateSettings, errors: Counter | None = None) -> State:
    teams = {
        name: TeamBudget(to_nano(team.daily_budget_usd), to_nano(team.monthly_budget_usd))
        for name, team in settings.teams.items()
    }
    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    if not url:
        keys = MemoryKeyStore(Path(settings.keys_file) if settings.keys_file else None)
        return State(keys, MemoryLedger(keys, teams))
    if errors is None:  # the CLI: counted nowhere
        errors = Counter("state_errors", "", ["operation"], registry=CollectorRegistry())
    timeout_s = settings.timeout_ms / 1000
    pool_wait_s = settings.pool_wait_ms / 1000
    client = connect(url, timeout_s, settings.max_connections, pool_wait_s)
    health = StateHealth(
        errors,
        timeout_s,
        settings.outage_log_interval_s,
        max_connections=settings.max_connections,
        pool_wait_s=pool_wait_s,
        outage_after_s=settings.outage_after_ms / 1000,
    )
    prefix = settings.key_prefix
    return State(
        RedisKeyStore(client, prefix),
        RedisLedger(client, health, prefix, teams),
        RedisPrefixes(client, health, prefix),
        health,
        client,
    )
