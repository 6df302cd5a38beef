"""Refreshing the lifecycle table from the provider's `GET /v1/models`, once at start.

Best effort, and only with a provider key configured in the gateway (a pass-through
deployment holds none): an unreachable provider leaves the catalog's dates in force.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from gateway.cascade.lifecycle import Lifecycle
from gateway.errors import GatewayError
from gateway.upstream import Upstream

LOG = logging.getLogger("gateway.lifecycle")
MODELS_TARGET = "/v1/models?limit=1000"
API_VERSION = b"2023-06-01"


async def refresh_lifecycle(lifecycle: Lifecycle, upstream: Upstream, key: SecretStr) -> int:
    """How many models the provider listed (0: the catalog's dates stand)."""
    headers = [(b"anthropic-version", API_VERSION), (b"x-api-key", key.get_secret_value().encode())]
    try:
        response = await upstream.open("anthropic", "GET", MODELS_TARGET, headers, b"")
    except GatewayError as error:
        LOG.info("model lifecycle not refreshed: %s", error.message)
        return 0
    try:
        body = await upstream.read("anthropic", response)
    except GatewayError:
        return 0
    finally:
        await response.aclose()
    if not response.is_success:
        LOG.info("model lifecycle not refreshed: GET /v1/models answered %s", response.status_code)
        return 0
    listed = lifecycle.merge_models_list(body)
    LOG.info("model lifecycle refreshed from the provider: %d models", listed)
    return listed
