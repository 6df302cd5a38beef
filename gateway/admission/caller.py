"""Who a call is from, and what it was let through with: the calling key (Caller), its
admitted call (Admitted), the credential a request carries, and the provider key a key's
calls go out with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from gateway.errors import GatewayError
from gateway.state.keys import GatewayKey
from gateway.state.ledger import Period
from gateway.wire.headers import RawHeaders, header_value


@dataclass(frozen=True, slots=True)
class Caller:
    """A gateway key that authenticated: known before the request is read."""

    key: GatewayKey
    digest: str = field(repr=False)
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """A gateway key's call let through: what it goes out with, and what to settle."""

    key: GatewayKey
    credential: bytes = field(repr=False)  # the provider key
    period: Period
    reserved_nano: int = 0  # reserved in the store
    counted: bool = True  # a model call: settled after it
    digest: str = field(default="", repr=False)
    local_nano: int = 0  # reserved in this replica's known spend only (the store was away)
    call_id: str = ""  # the ledger's name for the call: its reservation, settled once


def credential_of(headers: RawHeaders) -> bytes | None:
    value = header_value(headers, b"x-api-key")
    if value is not None:
        return value
    auth = header_value(headers, b"authorization")
    if auth is not None and auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    return None


def provider_key(
    key: GatewayKey, provider: str, configured: Mapping[str, SecretStr | None]
) -> bytes:
    """The key's own provider key for `provider` (its --provider-key-env variable), else the
    provider's. A key's own secret goes to its own provider only: `PROVIDER=VAR` names it,
    and a bare `VAR` belongs to the provider its value's format names (Anthropic's keys are
    `sk-ant-…`), so an Anthropic secret never reaches an OpenAI-compatible host. A variable
    the key names but the gateway lacks is an error, not the shared key's spend."""
    variable = _own_variable(key.provider_key_env, provider)
    if variable is not None:
        value = os.environ.get(variable)
        if not value:
            raise GatewayError(
                f"Gateway key {key.name!r} names its provider key in ${variable}, which the"
                " gateway's environment does not set."
            )
        if "=" in (key.provider_key_env or "") or _provider_of(value) == provider:
            return value.encode()
    secret = configured.get(provider)
    if secret is not None:
        return secret.get_secret_value().encode()
    raise GatewayError(
        f"Gateway key {key.name!r} has no provider key: set providers.{provider}.api_key"
        " or the key's --provider-key-env variable."
    )


def _own_variable(spec: str | None, provider: str) -> str | None:
    """The variable of `spec` (`VAR`, or `anthropic=VAR,openai=VAR2`) for `provider`."""
    if not spec:
        return None
    if "=" not in spec:
        return spec
    pairs = (part.partition("=") for part in spec.split(","))
    return next((var.strip() for name, _, var in pairs if name.strip() == provider), None)


def _provider_of(secret: str) -> str:
    return "anthropic" if secret.startswith("sk-ant-") else "openai"
