"""What the rewrite stages work on and what they report: the request, rewrites, findings,
observations.

A request is frozen; a stage that changes the body returns a new request whose body
shares every part it did not touch (copy on write), so unchanged requests cost nothing.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from gateway.rewrite.fingerprint import Fingerprint
from gateway.rewrite.snapshot import Observation

__all__ = ["Finding", "LLMRequest", "Rewrite", "evolve"]


class Rewrite(NamedTuple):
    """Something a stage changed in the request, and why (shown to the user as is). A
    tuple, made at once: a frozen dataclass sets each field through object.__setattr__."""

    rule: str
    detail: str = ""


class Finding(NamedTuple):
    """An anti-pattern seen in the request, whether or not a rule fixed it (a tuple, as
    Rewrite)."""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LLMRequest:
    provider: str
    body: dict[str, Any]  # never mutated in place: stages build new dicts for what they change
    step: str | None = None
    # Who is calling (a digest of their credential): the provider's cache is per workspace,
    # so the prefix registry must not compare one client's calls with another's.
    tenant: bytes = b""
    # False when the client sent `x-gateway-route: off`: its model is kept (pinned only).
    routing: bool = True
    tier: str | None = None  # set by the route stage when a tier chose the model
    rewrites: tuple[Rewrite, ...] = ()
    findings: tuple[Finding, ...] = ()
    changed: bool = field(default=False)  # whether the body must be serialized anew
    # How many leading system blocks are stable (set when volatile lines were moved after
    # them); None: the whole system prompt counts as stable.
    stable_system_blocks: int | None = None
    # The newest message's block that holds moved dates (message, block): breakpoints go
    # before it, never on or after it.
    dates_at: tuple[int, int] | None = None
    # Set by the last stage, for the prefix registry after the call.
    fingerprint: Fingerprint | None = None
    min_cacheable_tokens: int = 0
    # The prompt's tools as bytes without their breakpoints (fingerprint.unmarked), once the
    # volatile rule has made them (81 KB of Claude Code tools: ~90 us a serialization). No
    # stage after it changes the tools but for their breakpoints.
    prompt_tools: bytes | None = None
    # What the stages saw of this request (a tool's form, its lines): applied to the learned
    # memory only once the provider has accepted the call (snapshot.py), so a caller whose
    # calls are refused — an unknown credential, a body the provider rejects — teaches the
    # gateway nothing.
    observations: tuple[Observation, ...] = ()

    def with_body(self, body: dict[str, Any], *rewrites: Rewrite) -> LLMRequest:
        return evolve(self, body=body, rewrites=self.rewrites + rewrites, changed=True)

    def noting(self, *findings: Finding, observed: tuple[Observation, ...] = ()) -> LLMRequest:
        return evolve(
            self, findings=self.findings + findings, observations=self.observations + observed
        )

    def observing(self, *observations: Observation) -> LLMRequest:
        return evolve(self, observations=self.observations + observations)


if TYPE_CHECKING:  # checked as dataclasses.replace: a misspelt or mistyped field fails mypy
    from dataclasses import replace as evolve
else:
    _FIELDS = tuple(f.name for f in fields(LLMRequest))
    # What the code below builds on: each field set by the constructor, with at most a plain
    # default (a default_factory or an init=False field would need its own line here).
    assert all(f.init and f.default_factory is MISSING for f in fields(LLMRequest))

    class _Draft:
        """A request being made: LLMRequest's very slots, in its order (so an instance can
        become one), without the frozen class's __setattr__, so each field is stored by the
        interpreter's own slot store instead of a setter call."""

        __slots__ = _FIELDS

    _MISSING = object()  # a field not given: copied from the request
    _PARAMETERS = ", ".join(f"{name}=_MISSING" for name in _FIELDS)
    _COPY = "".join(
        f"    new.{name} = request.{name} if {name} is _MISSING else {name}\n" for name in _FIELDS
    )
    # LLMRequest's own: each field as given or its default, stored the same way (its
    # dataclass __init__ set each through object.__setattr__: ~22 K instructions, ~7 K now).
    _DEFAULTS = {f"_default_{f.name}": f.default for f in fields(LLMRequest)}
    _SIGNATURE = ", ".join(
        f.name if f.default is MISSING else f"{f.name}=_default_{f.name}"
        for f in fields(LLMRequest)
    )
    _STORE = "".join(f"    new.{name} = {name}\n" for name in _FIELDS)
    _SOURCE = f"""
def evolve(request, /, *, {_PARAMETERS}):
    new = _new(_Draft)
{_COPY}    _set(new, "__class__", LLMRequest)
    return new

def made(cls, {_SIGNATURE}):
    new = _new(_Draft)
{_STORE}    _set(new, "__class__", cls)
    return new

def newargs(request):
    return ({", ".join(f"request.{name}" for name in _FIELDS)},)
"""
    _scope: dict[str, Any] = {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_Draft": _Draft,
        "_MISSING": _MISSING,
        "LLMRequest": LLMRequest,
        **_DEFAULTS,
    }
    exec(_SOURCE, _scope)  # the class's own field names, as dataclasses does
    LLMRequest.__new__ = staticmethod(_scope["made"])
    del LLMRequest.__init__  # made by __new__: object's own takes the arguments as given
    # copy and pickle make an instance by `cls.__new__(cls, *args)`: the fields are its args.
    LLMRequest.__getnewargs__ = _scope["newargs"]
    evolve = _scope["evolve"]
    evolve.__doc__ = """dataclasses.replace for an LLMRequest, ~6.8 K instructions instead of
        16 K (the slot setters it called, each a method-wrapper call that packs its
        arguments in a tuple) or replace's ~2.7 us: a `_Draft`'s fields stored, each given
        one or the request's own, in code made from the class's fields, then the draft made
        an LLMRequest (`__class__`: the same slots, so the same layout). The class has no
        __post_init__ and no init=False field, so this is what replace builds; fields are
        taken by name only and one it does not have is refused (TypeError), as by replace.
        A stage makes a new request up to ~7 times a call."""
