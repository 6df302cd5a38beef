"""The pin stage: a floating model alias becomes the dated snapshot it stands for.

An alias moves when the provider ships a new snapshot, and a new snapshot is a new cache
(and new behaviour): pinning makes that an explicit config change. IDs that are already
fixed snapshots (Claude 4.6 and later, dated ids) pass unchanged. The stage also notes
traffic to a model that retires soon.
"""

from __future__ import annotations

import datetime as dt

from gateway.errors import InvalidRequest
from gateway.rewrite.request import Finding, LLMRequest, Rewrite
from gateway.rewrite.routes import Retirements, Routes


def pin(request: LLMRequest, table: Routes) -> LLMRequest:
    model = request.body.get("model")
    if not isinstance(model, str):
        return request
    snapshot = table.pinned(model)
    if snapshot == model:
        return request
    policy = table.settings.pin_policy
    if policy == "reject":
        raise InvalidRequest(
            f"model: {model!r} is an alias that moves to new snapshots; this gateway requires"
            f" a pinned model id: use {snapshot!r}"
        )
    if policy == "warn":
        return request.noting(Finding("unpinned_model", f"{model} -> {snapshot}"))
    return request.with_body({**request.body, "model": snapshot}, Rewrite("pin", snapshot))


def note_retirement(
    request: LLMRequest, lifecycle: Retirements, window_days: int, today: dt.date
) -> LLMRequest:
    model = request.body.get("model")
    if not isinstance(model, str):
        return request
    left = lifecycle.retiring_within(model, today, window_days)
    if left is None:
        return request
    code = "model_retired" if left <= 0 else "model_retiring"
    return request.noting(Finding(code, f"{model}: {left} days to retirement"))
