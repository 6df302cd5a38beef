"""Gateway keys: what a key allows, how it is stored (hashed), and the in-memory store.

A key is `tg-` and 43 URL-safe characters (256 random bits); only its SHA-256 is kept,
which is safe without a salt because the key is high-entropy. A key record never changes
after creation (revoke and create again), so a replica may keep a copy for outages.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, fields
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal, Protocol

KEY_PREFIX = "tg-"
NANO = 1_000_000_000  # budgets and spend are kept as integer nano-dollars
RELOAD_EVERY_S = 1.0
OutagePolicy = Literal["fail_open", "fail_closed"]


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str | bytes) -> str:
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(raw).hexdigest()


def is_gateway_key(credential: bytes) -> bool:
    return credential.startswith(b"tg-")


def to_nano(usd: float | None) -> int:
    return round(usd * NANO) if usd else 0


@dataclass(frozen=True, slots=True)
class GatewayKey:
    name: str
    digest: str  # sha256 hex of the secret
    team: str = ""
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ()  # fnmatch patterns; empty: any model
    steps: tuple[str, ...] = ()  # empty: any step
    provider_key_env: str | None = None  # the provider key's environment variable
    on_outage: OutagePolicy | None = None  # None: state.on_outage
    created_at: float = 0.0

    def to_fields(self) -> dict[str, str]:
        """Flat strings: a Redis hash, read by the Lua scripts (limits in nano-dollars)."""
        out = {k: json.dumps(v) for k, v in asdict(self).items()}
        out |= {"name": self.name, "team": self.team, "digest": self.digest}
        out |= {"daily_nano": str(to_nano(self.daily_budget_usd))}
        out |= {"monthly_nano": str(to_nano(self.monthly_budget_usd))}
        out |= {"rpm_limit": str(self.rpm or 0), "tpm_limit": str(self.tpm or 0)}
        return out

    @classmethod
    def from_fields(cls, raw: dict[bytes, bytes] | dict[str, str]) -> GatewayKey:
        data = {_text(k): _text(v) for k, v in raw.items()}
        values: dict[str, object] = {}
        for f in fields(cls):
            text = data.get(f.name)
            if text is None:
                continue
            if f.name in ("name", "team", "digest"):
                values[f.name] = text
            else:
                value = json.loads(text)
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)  # type: ignore[arg-type]  # checked field by field above

    def allows(self, model: str | None, step: str | None) -> bool:
        return self.allows_model(model or "") and self.allows_step(step)

    def allows_model(self, *names: str) -> bool:
        """Whether the key may call a model known by any of `names` (its id and the aliases
        that stand for it): `claude-haiku-4-5` allows the snapshot it is pinned to."""
        return not self.models or any(fnmatchcase(n, p) for n in names for p in self.models)

    def allows_step(self, step: str | None) -> bool:
        return not self.steps or (step or "") in self.steps


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class KeyExists(Exception):
    pass


class KeyStore(Protocol):
    """Where gateway keys live: `gateway keys` writes, the gateway reads (via the ledger)."""

    async def create(self, key: GatewayKey) -> None:
        """Stores a new key; KeyExists if its name is taken."""

    async def list(self) -> list[GatewayKey]: ...

    async def revoke(self, name: str) -> bool:
        """Deletes the key; False if there was none of that name."""


class MemoryKeyStore:
    """Keys in a JSON file (`state.keys_file`), re-read when it changes (at most once a
    second): `gateway keys` in another process reaches a running single-process gateway."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._by_digest: dict[str, GatewayKey] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload()

    def get(self, key_digest: str) -> GatewayKey | None:
        now = time.monotonic()
        if now - self._checked >= RELOAD_EVERY_S:
            self._checked = now
            self._reload()
        return self._by_digest.get(key_digest)

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._by_digest, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        rows = json.loads(self.path.read_text("utf-8") or "[]")
        keys = [GatewayKey.from_fields(row) for row in rows]
        self._by_digest = {key.digest: key for key in keys}
        self._mtime = mtime

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [key.to_fields() for key in self._by_digest.values()]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(rows, indent=1), "utf-8")
        os.chmod(temporary, 0o600)
        temporary.replace(self.path)  # atomic: a reader never sees half a file

    async def create(self, key: GatewayKey) -> None:
        self._reload()
        if any(k.name == key.name for k in self._by_digest.values()):
            raise KeyExists(key.name)
        self._by_digest[key.digest] = key
        self._save()

    async def list(self) -> list[GatewayKey]:
        self._reload()
        return sorted(self._by_digest.values(), key=lambda k: k.name)

    async def revoke(self, name: str) -> bool:
        self._reload()
        found = [d for d, k in self._by_digest.items() if k.name == name]
        for key_digest in found:
            del self._by_digest[key_digest]
        self._save()
        return bool(found)
