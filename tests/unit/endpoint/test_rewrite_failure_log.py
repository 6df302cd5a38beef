"""A rewrite that fails is logged with its traceback the first time it fails at a place, then
in one line: a client sending bodies the stages cannot read does not write a traceback a
call. The places are bounded; past the bound every failure is a line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from gateway.endpoint import model_call
from gateway.endpoint.model_call import log_rewrite_failure


@pytest.fixture(autouse=True)
def no_places() -> Iterator[None]:
    kept = set(model_call._failed_at)
    model_call._failed_at.clear()
    yield
    model_call._failed_at.clear()
    model_call._failed_at.update(kept)


def failure(kind: int) -> Exception:
    """An error raised at one of two places."""
    try:
        if kind == 0:
            "".get("content")  # type: ignore[attr-defined]
        else:
            [][0]
    except Exception as error:
        return error
    raise AssertionError


def test_the_first_failure_at_a_place_has_its_traceback_later_ones_a_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.endpoint"):
        for kind in (0, 0, 1, 0, 1):
            log_rewrite_failure(failure(kind))
    traced = [record.exc_info is not None for record in caplog.records]
    assert traced == [True, False, True, False, False]
    assert "AttributeError at " in caplog.records[1].getMessage()
    assert "IndexError at " in caplog.records[4].getMessage()


def test_past_the_bound_every_failure_is_a_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_call, "FAILED_AT_MAX", 1)
    with caplog.at_level(logging.WARNING, logger="gateway.endpoint"):
        log_rewrite_failure(failure(0))
        log_rewrite_failure(failure(1))
    assert [record.exc_info is not None for record in caplog.records] == [True, False]
    assert len(model_call._failed_at) == 1
