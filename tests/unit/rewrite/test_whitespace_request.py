"""The whitespace rule's request: the body, its rewrite and its finding added in one new
request equal `with_body(...).noting(...)` of the request it was given, every field."""

from __future__ import annotations

from dataclasses import fields

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.request import Finding, LLMRequest, Rewrite
from gateway.rewrite.whitespace import whitespace, whitespace_openai

BEFORE = LLMRequest(
    "anthropic",
    {},
    "step",
    b"tenant",
    rewrites=(Rewrite("route", "x"),),
    findings=(Finding("earlier", "y"),),
    dates_at=(1, 2),
)


def _expected(request: LLMRequest, body: dict[str, object], detail: str) -> LLMRequest:
    return request.with_body(body, Rewrite("whitespace", detail)).noting(
        Finding("whitespace_drift", detail)
    )


def test_one_request_equals_the_two_steps() -> None:
    messages = [{"role": "user", "content": "hi  \n\n"}]
    anthropic = {"model": "m", "system": "be \n", "messages": messages}
    openai = {"model": "m", "instructions": "be \n", "input": messages}
    learned = LearnedMemory.within(LearnedState(1 << 20, 1 << 20), 5, True)
    for rule, body, provider in (
        (whitespace, anthropic, "anthropic"),
        (whitespace_openai, openai, "openai"),
    ):
        request = LLMRequest(
            provider,
            body,
            "step",
            b"tenant",
            rewrites=BEFORE.rewrites,
            findings=BEFORE.findings,
            dates_at=BEFORE.dates_at,
        )
        for memo in (None, learned.memo):
            got = rule(request, True, memo)
            new_body = {**body, **{k: got.body[k] for k in got.body if got.body[k] is not body[k]}}
            detail = got.rewrites[-1].detail
            want = _expected(request, new_body, detail)
            assert got.changed
            assert got.body == new_body
            for field in fields(LLMRequest):
                if field.name != "observations":
                    assert getattr(got, field.name) == getattr(want, field.name), field.name
            assert got.observations[: len(request.observations)] == request.observations
