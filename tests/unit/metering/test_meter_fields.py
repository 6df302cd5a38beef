"""`Meter.record` reads a record's fields by one getter made from their names: each value it
gets is the field of that name (a distinct value per field, so a swap of two fails)."""

from __future__ import annotations

from gateway.metering.calls import _RECORDED, CallRecord

NAMES = (
    "provider", "step", "model_requested", "model_used", "status", "duration_s", "ttft_s",
    "usage", "rewrites", "cache", "coalesced", "overhead_s", "attempts", "budget_breaches",
)  # fmt: skip


def test_the_getter_reads_each_field_by_its_name() -> None:
    record = CallRecord(*(f"value-{i}" for i in range(len(CallRecord._fields))))  # type: ignore[arg-type]
    assert _RECORDED(record) == tuple(getattr(record, name) for name in NAMES)
