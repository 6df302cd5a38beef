"""The gateway's objects for model calls, as create_app builds them, for bench/stages.py."""

from __future__ import annotations

import hashlib
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.cache.turns import Turns
from gateway.cascade.lifecycle import Lifecycle
from gateway.cascade.table import RoutingTable
from gateway.catalog import ModelCatalog
from gateway.endpoint.prepared import Reading, read
from gateway.metering.calls import Meter
from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.metering.pricing import Pricing
from gateway.rewrite.memo import Derived
from gateway.rewrite.pipeline import STAGES, RewriteContext
from gateway.rewrite.request import LLMRequest
from gateway.settings import Settings
from gateway.wire.formats import WireFormat
from gateway.wire.usage import Usage
from staging.bodies import Body

TENANT = hashlib.blake2b(b"sk-ant-bench", digest_size=8).digest()
JSON = [(b"content-type", b"application/json")]


class Parts:
    """The objects create_app builds for model calls, with the default settings."""

    def __init__(self, settings: Settings, memo: bool = True) -> None:
        self.settings = settings
        catalog = ModelCatalog.load(settings.models)
        self.catalog = catalog
        learned = LearnedState(
            settings.rewrite.learned_state_max_bytes,
            settings.rewrite.learned_state_per_tenant_max_bytes,
        )
        after = settings.rewrite.learn_volatile_after
        self.memory = LearnedMemory.within(learned, after, memo)
        self.registry = self.memory.prefixes
        routing = RoutingTable(settings.routing, catalog)
        self.context = RewriteContext(
            settings.rewrite, catalog, self.memory, routing, Lifecycle(catalog)
        )
        labels = LabelBounds(
            settings.metering.steps,
            (name for spec in catalog.models for name in (spec.id, *spec.aliases)),
        )
        self.meter = Meter(Metrics(CollectorRegistry()), labels, Pricing.load(settings.pricing))
        self.turns = Turns(learned)  # the tenant's kept bodies (wire/reparse.py), as served

    def read(self, raw: bytes, copy: bool = True) -> Reading:
        """The body parsed as the gateway parses it: reusing the kept turns where it repeats
        one (a copy of `raw`: a call's body is a new bytes object)."""
        return read(JSON, bytes(bytearray(raw)) if copy else raw, self.turns, TENANT)

    def request(self, body: Body, parsed: dict[str, Any]) -> LLMRequest:
        return self.request_for(body.wire, parsed)

    def request_for(self, wire: WireFormat, parsed: dict[str, Any]) -> LLMRequest:
        return LLMRequest(wire.provider, parsed, None, TENANT, True)

    def call(
        self, body: Body, raw: bytes, usage: Usage | None, at: float, derived: bool = True
    ) -> None:
        """One accepted call: its lessons kept and the registry told of it, as the relay does.
        `derived=False`: what it derived is not kept, as if it were the conversation's newest
        turn (the memo holds the turns before it)."""
        reading = self.read(raw)
        request = self.request(body, reading.parsed)
        for stage in STAGES[body.wire.name]:
            request = stage(request, self.context)
        kept = [o for o in request.observations if derived or not isinstance(o, Derived)]
        self.memory.learn(kept)
        reading.keep()
        if request.fingerprint is not None and usage is not None:
            owner = (body.wire.provider, "other", "none")
            self.registry.record(
                request.fingerprint, usage, at, at + 0.5, request.min_cacheable_tokens, owner
            )
