"""Which catalog entry serves a request's model id, on either provider's wire.

A listed id is served as listed (404 once retired). An unlisted id that follows the
provider's naming (`claude-opus-5-1`, `gpt-6.2-sol`) is served with the defaults of its
nearest listed relative — same family and tier — and the response says so in
`x-emulator-model-inferred: <relative's id>`; `emulator.strict_models` refuses it instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.catalog import ModelCatalog, ModelSpec

INFERRED_HEADER = "x-emulator-model-inferred"


@dataclass(frozen=True, slots=True)
class ServedModel:
    spec: ModelSpec
    inferred_from: str | None  # the listed relative whose defaults an unlisted id gets

    def headers(self) -> dict[str, str]:
        return {} if self.inferred_from is None else {INFERRED_HEADER: self.inferred_from}


def served_model(
    catalog: ModelCatalog, name: str, provider: str, today: dt.date, *, strict: bool
) -> ServedModel | None:
    """The spec a request for `name` is answered with, None where the API would 404."""
    spec = catalog.resolve(name)
    if spec is not None:
        if spec.provider != provider or spec.lifecycle(today) == "retired":
            return None
        return ServedModel(spec, None)
    if strict:
        return None
    base = catalog.nearest(name)
    inferred = catalog.infer(name)
    if base is None or inferred is None or base.provider != provider:
        return None
    return ServedModel(inferred, base.id)
