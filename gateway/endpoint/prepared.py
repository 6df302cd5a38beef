"""The call as it goes upstream: the client's body parsed once (reusing the parse of the
tenant's earlier body where the bytes repeat it: wire/reparse.py), checked, and (for a model
call) rewritten, then serialised once if it changed (spliced from the bytes it repeats)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import orjson

from gateway.cache.turns import Place, Turns
from gateway.cascade.dispatch import Candidate
from gateway.cascade.table import StepPlan
from gateway.errors import InvalidRequest, UnsupportedMediaType
from gateway.rewrite.fingerprint import Fingerprint
from gateway.rewrite.prompt_cache import KEY_RULE
from gateway.rewrite.request import Rewrite
from gateway.rewrite.snapshot import Observation
from gateway.wire.formats import WireFormat
from gateway.wire.headers import RawHeaders, header_value, is_json, safe_model_name
from gateway.wire.reparse import reparse
from gateway.wire.splice import Body, spliced
from gateway.wire.turn import Held, Sent, Turn


@dataclass(slots=True)
class Reading:
    """A body's parse and what is known of its bytes: the held body it was parsed from, and
    its own turn when reused (its pieces: serialising by splicing)."""

    raw: bytes
    parsed: dict[str, Any]
    model: str | None
    tenant: bytes = b""
    turns: Turns | None = None
    base: Held | None = None
    turn: Turn | None = None  # made by reparse; a body parsed whole is kept unlearned
    place: Place | None = None  # where its bytes go among the held ones (turns.py)

    def dumps(self, body: dict[str, Any]) -> Body:
        """`dumps(body)`, its parts shared with the parse written from their bytes (a long
        body: its parts, unjoined)."""
        if self.turn is None:
            return dumps(body)
        try:
            return spliced(body, self.turn.pieces)
        except orjson.JSONEncodeError:
            raise InvalidRequest("The request body is nested too deeply.") from None

    def is_raw(self, body: dict[str, Any]) -> bool:
        """Whether `dumps(body)` is the raw body: it is its canonical parse."""
        return body is self.parsed and self.turn is not None

    def keep(self) -> None:
        """The body kept for the tenant's next one (once the provider accepted the call)."""
        if self.turns is not None:
            held = self.turn if self.turn is not None else Sent(self.raw, self.parsed)
            self.turns.keep(self.tenant, held, self.base, self.place)
            self.place = None  # its bodies are not held past the keep


class Prepared(NamedTuple):
    """The call as it goes upstream: the body to send and what the gateway did to it. A
    tuple, made at once (a frozen dataclass sets each of its fields apart)."""

    body: Body
    model: str | None = None  # as the client asked
    rewrites: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    fingerprint: Fingerprint | None = None
    min_cacheable_tokens: int = 0
    sent_model: str | None = None  # after routing and pinning
    payload: dict[str, Any] | None = None  # the body as sent, for fallbacks to change the model
    tier: str | None = None
    plan: StepPlan | None = None
    # The gateway asked the stream for its usage: what that added is taken out again.
    filtered: bool = False
    # What the rewrite stages saw of the request: learned once the provider accepts it.
    observations: tuple[Observation, ...] = ()
    # A value the gateway added to the request (its prompt_cache_key, as JSON) that the
    # provider echoes back: the client gets null in its place (wire/echo.py).
    injected: bytes | None = None
    reading: Reading | None = None  # the parse's bytes, for serialising by splicing

    @property
    def first_model(self) -> str:
        return self.sent_model or self.model or ""

    def candidates(self, provider: str) -> list[Candidate]:
        """The model the call goes to, then the step's fallbacks, each with its body."""
        first = Candidate(self.first_model, self.body)
        if self.plan is None or self.payload is None:
            return [first]
        return [first, *(self._on(model) for model in self.plan.fallbacks.get(provider, ()))]

    def hedge(self, provider: str) -> tuple[float | None, Candidate | None]:
        """When to hedge and with what: the first fallback, else the same model."""
        plan = self.plan
        if plan is None or not plan.hedge or plan.ttft_ms is None or self.payload is None:
            return None, None
        fallbacks = plan.fallbacks.get(provider, ())
        model = fallbacks[0] if fallbacks else self.first_model
        return plan.ttft_ms / 1000, self._on(model)

    def models(self, provider: str) -> tuple[str, tuple[str, ...]]:
        """The model the call goes to, and every other one it may call: its fallbacks, the
        hedge and the shadow. A gateway key must be allowed each (admission authorizes)."""
        plan = self.plan
        if plan is None or self.payload is None:
            return self.first_model, ()
        others = list(plan.fallbacks.get(provider, ()))
        if plan.shadow is not None:
            others.append(plan.shadow.model)
        return self.first_model, tuple(others)

    def billed_models(self, provider: str) -> tuple[str, ...]:
        """The models whose calls are charged to the caller: all but the shadow's."""
        plan = self.plan
        fallbacks = plan.fallbacks.get(provider, ()) if plan is not None and self.payload else ()
        return (self.first_model, *fallbacks)

    def without(self, refused: frozenset[str], provider: str) -> Prepared:
        """The call without the fallbacks, hedge and shadow the caller may not use."""
        plan = self.plan
        if not refused or plan is None:
            return self
        fallbacks = {**plan.fallbacks}
        fallbacks[provider] = tuple(m for m in fallbacks.get(provider, ()) if m not in refused)
        shadow = plan.shadow if plan.shadow is None or plan.shadow.model not in refused else None
        return self._replace(plan=replace(plan, fallbacks=fallbacks, shadow=shadow))

    def as_judged(self, raw: bytes) -> Prepared:
        """A gateway key's call goes out as the gateway judged it (model, output limits): a
        body sent as it came is serialised from its parse, so that a duplicated key (orjson
        keeps the last, a provider may keep the first) cannot call another model or limit
        than the one authorized and reserved for. ~30 µs for a 270 KB body (orjson.dumps)."""
        if self.body is not raw or self.payload is None:
            return self  # changed, so serialised from the parse already
        reading = self.reading
        if reading is not None and reading.is_raw(self.payload):
            return self  # the raw body is its parse's dumps already
        return self._replace(body=self._dumps(self.payload))

    def _on(self, model: str) -> Candidate:
        assert self.payload is not None
        return Candidate(model, self._dumps({**self.payload, "model": model}))

    def _dumps(self, body: dict[str, Any]) -> Body:
        return dumps(body) if self.reading is None else self.reading.dumps(body)


def parse(headers: RawHeaders, raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The JSON object a call's body must be, and its model, checked fit to echo."""
    reading = read(headers, raw)
    return reading.parsed, reading.model


# Below this a body is parsed whole and not kept: orjson parses 1 KB in ~2 us, a match
# against a kept turn costs ~20 (bench/stages.py, 1kb: "parse (reusing the kept turn)").
MIN_REUSE_BYTES = 8 * 1024


def read(headers: RawHeaders, raw: bytes, turns: Turns | None = None, who: bytes = b"") -> Reading:
    """`parse`, reusing the parse of the tenant's kept turns where the body repeats one."""
    return read_as(header_value(headers, b"content-type"), raw, turns, who)


def read_as(
    content_type: bytes | None, raw: bytes, turns: Turns | None = None, who: bytes = b""
) -> Reading:
    """`read` of a body whose Content-Type header is `content_type` (None: it sent none)."""
    if not is_json(content_type):
        raise UnsupportedMediaType("Content-Type must be application/json.")
    if len(raw) < MIN_REUSE_BYTES:
        turns = None  # a small body parses in less time than a match with a kept one takes
    held, place = turns.near(who, raw) if turns is not None else ((), None)
    found = reparse(raw, held) if held else None
    if found is not None:
        parsed, base, turn = found
    else:
        base, turn = None, None
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise InvalidRequest("The request body must be a JSON object.")
    model = parsed.get("model")
    model = model if isinstance(model, str) else None
    if model is not None and not safe_model_name(model):
        # It is echoed in x-gateway-model, and named in logs and metrics.
        raise InvalidRequest("model: must be 1 to 256 printable ASCII characters, without spaces.")
    return Reading(raw, parsed, model, who, turns, base, turn, place)


def as_sent(
    wire: WireFormat,
    parsed: dict[str, Any],
    raw: bytes,
    model: str | None,
    findings: tuple[str, ...] = (),
) -> Prepared:
    """A body forwarded as the client sent it, but for asking a stream for its usage."""
    payload, filtered = ask_usage(wire, parsed)
    body = dumps(payload) if filtered else raw
    return Prepared(body=body, model=model, findings=findings, filtered=filtered, payload=payload)


def ask_usage(wire: WireFormat, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A stream that would not report its usage, asked to (OpenAI chat without
    include_usage); True when the body changed and the stream must be filtered."""
    ask = wire.ask_usage
    return (body, False) if ask is None else ask(body)


def dumps(body: dict[str, Any]) -> bytes:
    """A body the gateway changed, serialised; one nested past orjson's 255 levels cannot be
    (the providers refuse such bodies too): a 400, not the gateway's own 500."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise InvalidRequest("The request body is nested too deeply.") from None


def injected_key(rewrites: tuple[Rewrite, ...]) -> bytes | None:
    """The prompt_cache_key the gateway added, as it appears in JSON; None if it added none."""
    for rewrite in rewrites:
        if rewrite.rule == KEY_RULE and rewrite.detail:
            return orjson.dumps(rewrite.detail)
    return None


def tenant(headers: RawHeaders) -> bytes:
    """Whose learned state a call reads and adds to: a digest of its credential."""
    return tenant_of(header_value(headers, b"x-api-key") or header_value(headers, b"authorization"))


def tenant_of(credential: bytes | None) -> bytes:
    """`tenant` of the first x-api-key's value, else the first Authorization's."""
    return hashlib.blake2b(credential or b"", digest_size=8).digest()
