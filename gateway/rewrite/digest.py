"""The digests that tell one prompt's parts from another's: fast for the bytes, keyed for
the tenant.

`content`: xxh3-128 (the `xxhash` package, ~0.03 us a KB) where it imports, else blake2b
(~0.7 us a KB: 238 us over a 340 KB Claude Code turn). Neither is used across algorithms:
a digest from one never meets one from the other (`ALGORITHM` names the store's keys,
cache/shared_prefixes.py). xxh3 is not collision resistant against an adversary, so a
content digest only ever tells apart one tenant's own prompts, for observability and
cache placement (docs/threat-model.md): the digests that meet other tenants' — a family, a
conversation, keys of the shared store — are `owned`: blake2b over the tenant and the
parts' content digests, so content that collides under xxh3 still never crosses tenants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

try:
    import xxhash
except ImportError:  # the pure fallback (tests/unit/rewrite/test_digest.py runs it)
    xxhash = None  # type: ignore[assignment]


def _blake2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


ALGORITHM: Final = "xxh3" if xxhash is not None else "blake2b"
content: Final[Callable[[bytes], bytes]] = (
    xxhash.xxh3_128_digest if xxhash is not None else _blake2b
)


def owned(tenant: bytes, digests: bytes) -> bytes:
    """A tenant's digest of content digests: blake2b keyed by the tenant (its credential's
    8-byte digest, endpoint/prepared.py), as it is what separates tenants where digests meet."""
    return hashlib.blake2b(digests, digest_size=12, key=tenant).digest()
