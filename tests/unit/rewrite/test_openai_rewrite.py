"""OpenAI's rewrite stages (Chat Completions and Responses bodies), case by case, and prices."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from gateway.emulator.openai.prompt import build_chat_prompt
from gateway.metering.pricing import Pricing
from gateway.rewrite import prompt_cache
from gateway.rewrite.openai_text import layers
from gateway.rewrite.pipeline import OPENAI_STAGES, rewrite
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.volatile import volatile_openai
from gateway.rewrite.whitespace import whitespace_openai
from gateway.wire.formats import OPENAI_CHAT, OPENAI_RESPONSES
from gateway.wire.openai_text import chat_text, response_text
from gateway.wire.sse import SSEDecoder
from gateway.wire.usage import Usage
from tests.support.rewrite import CATALOG, context, memory

OLD, NEW = "gpt-4.1-2025-04-14", "gpt-5.6-terra"
STAMP = "Current time: 2026-11-25T10:00:00Z"
NOW = dt.datetime(2026, 11, 25, 10, 0, 5, tzinfo=dt.UTC)  # the requests' time: STAMP is "now"


def chat(*messages: dict[str, Any], model: str = OLD, **extra: Any) -> LLMRequest:
    return LLMRequest("openai", {"model": model, "messages": list(messages), **extra})


def responses(model: str = NEW, **body: Any) -> LLMRequest:
    return LLMRequest("openai", {"model": model, **body})


def system(text: str, role: str = "system") -> dict[str, Any]:
    return {"role": role, "content": text}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


@pytest.mark.parametrize(
    ("request_", "field", "expected"),
    [
        (chat(system("Be brief.  \r\n"), user("hi\t")), "messages",
         [system("Be brief."), user("hi")]),
        (chat(user([{"type": "text", "text": "a \n"}])), "messages",
         [user([{"type": "text", "text": "a"}])]),
        (responses(instructions="\n\nBe brief. \n", input="x"), "instructions", "Be brief."),
        (responses(input=[{"type": "function_call_output", "call_id": "c", "output": "42 \n"}]),
         "input", [{"type": "function_call_output", "call_id": "c", "output": "42"}]),
        (chat(user("q"), tools=[{"type": "function", "function": {"name": "f",
                                                                   "description": "d \n"}}]),
         "tools", [{"type": "function", "function": {"name": "f", "description": "d"}}]),
        (responses(input="q", tools=[{"type": "function", "name": "f", "description": " d "}]),
         "tools", [{"type": "function", "name": "f", "description": " d"}]),
    ],
)  # fmt: skip
def test_whitespace(request_: LLMRequest, field: str, expected: Any) -> None:
    out = whitespace_openai(request_, enabled=True)
    assert out.body[field] == expected
    assert [r.rule for r in out.rewrites] == ["whitespace"]
    assert whitespace_openai(out, enabled=True) is out  # canonical: nothing left to change


def test_whitespace_switched_off_still_reports() -> None:
    out = whitespace_openai(chat(user("hi ")), enabled=False)
    assert out.body["messages"] == [user("hi ")]
    assert [f.code for f in out.findings] == ["whitespace_drift"]


@pytest.mark.parametrize(
    ("request_", "field", "expected", "dates_at"),
    [
        # Chat: the date leaves the system message for the end of the newest user turn.
        (chat(system(f"Be brief.\n{STAMP}"), user("hi")), "messages",
         [system("Be brief."), user([{"type": "text", "text": "hi"},
                                     {"type": "text", "text": STAMP}])], (1, 1)),
        # The developer role, and a newest turn that already has parts.
        (chat(system(f"{STAMP}\nRules.", "developer"), user([{"type": "text", "text": "q"}])),
         "messages", [system("Rules.", "developer"),
                      user([{"type": "text", "text": "q"}, {"type": "text", "text": STAMP}])],
         (1, 1)),
        # The newest message is a tool result: the date is a user message of its own.
        (chat(system(f"A.\n{STAMP}"), {"role": "tool", "tool_call_id": "t", "content": "r"}),
         "messages", [system("A."), {"role": "tool", "tool_call_id": "t", "content": "r"},
                      user(STAMP)], (2, 0)),
        # Responses: instructions lose the date; a string input keeps its bytes.
        (responses(instructions=f"Be kind.\n{STAMP}", input="hi"), "input",
         [user("hi"), user(STAMP)], (1, 0)),
        (responses(instructions=f"{STAMP}\nBe kind.",
                   input=[user([{"type": "input_text", "text": "hi"}])]), "input",
         [user([{"type": "input_text", "text": "hi"}, {"type": "input_text", "text": STAMP}])],
         (0, 1)),
    ],
)  # fmt: skip
def test_dates_move_to_the_newest_turn(
    request_: LLMRequest, field: str, expected: Any, dates_at: tuple[int, int]
) -> None:
    out = volatile_openai(request_, "move", memory().lines, NOW)
    assert out.body[field] == expected
    assert out.dates_at == dates_at
    assert [r.rule for r in out.rewrites] == ["volatile_moved"]
    assert STAMP not in str(out.body.get("instructions"))


def test_dates_are_reported_only_or_truncated_by_policy() -> None:
    request = chat(system(f"A.\n{STAMP}"), user("hi"))
    reported = volatile_openai(request, "report_only", memory().lines, NOW)
    assert reported.body == request.body
    assert [f.code for f in reported.findings] == ["timestamp_in_prefix"]
    cut = volatile_openai(request, "truncate_to_day", memory().lines, NOW)
    assert cut.body["messages"][0]["content"] == "A.\nCurrent time: 2026-11-25"


def test_todays_date_the_same_on_every_call_stays() -> None:
    """openai-agents: today's date, the same on every call, stays in
    the instructions: moving it saves nothing and costs its tokens uncached every call."""
    learned = memory(learn_volatile_after=2)
    for question in ["q1", "q2", "q3"]:
        sent = responses(instructions="Agent.\nToday's date is 2026-11-25.", input=question)
        out = volatile_openai(sent, "move", learned.lines, NOW)
        learned.learn(out.observations)
        assert out.body == sent.body
        assert not out.findings


def test_per_user_lines_are_learned_and_moved_to_the_end_of_their_text() -> None:
    """The learned line stays in its message (no message of its own),
    at its end, where what followed it is shared by the family again."""
    learned = memory(learn_volatile_after=5)
    out = chat()
    for name in ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay"]:
        out = volatile_openai(
            chat(system(f"Support bot.\nThe customer is {name}.\nRules."), user("q")),
            "move",
            learned.lines,
            NOW,
        )
        learned.learn(out.observations)  # as the endpoint does once the provider accepted the call
    assert out.body["messages"] == [
        system("Support bot.\nRules.\nThe customer is Fay."),
        user("q"),
    ]
    assert out.stable_system_blocks == 0


def test_learned_lines_keep_their_section_and_their_parts() -> None:
    """Codex: a learned line inside `<permissions instructions>`
    stays there, and a developer message's part list stays a part list."""
    learned = memory(learn_volatile_after=5)
    out = responses()
    for root in ["a", "b", "c", "d", "e", "f"]:
        parts = [
            {"type": "input_text", "text": "Sandbox rules."},
            {"type": "input_text", "text": f"<permissions instructions>\nRoots: /{root}\nMore."
             "\n</permissions instructions>"},
        ]  # fmt: skip
        sent = responses(
            instructions="Agent.", input=[{"role": "developer", "content": parts}, user("q")]
        )
        out = volatile_openai(sent, "move", learned.lines, NOW)
        learned.learn(out.observations)
        assert out.body == sent.body
    assert [f.code for f in out.findings] == ["user_content_in_prefix", "volatile_line_kept"]
    assert "inside a <section>" in out.findings[-1].detail


@pytest.mark.parametrize(
    ("request_", "key_expected"),
    [
        (chat(system("A."), user("q")), True),
        (chat(system("A."), user("q"), prompt_cache_key="mine"), False),
        (responses(instructions="A.", input="q"), True),
    ],
)
def test_prompt_cache_key_from_the_family(request_: LLMRequest, key_expected: bool) -> None:
    out = prompt_cache.cache_key(request_)
    assert (out is not request_) is key_expected
    if key_expected:
        assert out.body["prompt_cache_key"].startswith("tollgate-")
        assert [r.rule for r in out.rewrites] == ["prompt_cache_key"]


def test_one_family_one_key_other_tenants_and_prompts_another() -> None:
    def key(request: LLMRequest) -> str:
        return str(prompt_cache.cache_key(request).body["prompt_cache_key"])

    first = key(chat(system("A."), user("q1")))
    assert key(chat(system("A."), user("q2"), {"role": "assistant", "content": "x"})) == first
    assert key(chat(system("B."), user("q1"))) != first
    other = LLMRequest("openai", chat(system("A."), user("q1")).body, tenant=b"other")
    assert key(other) != first


@pytest.mark.parametrize(
    ("model", "step", "body", "field", "value"),
    [
        (OLD, "chat", {}, "prompt_cache_retention", "24h"),  # gpt-4.1 has extended retention
        ("gpt-4o-mini", "chat", {}, None, None),  # 24h would be a 400: left to the default
        ("gpt-4o-mini", "routing", {}, "prompt_cache_retention", "in_memory"),
        (OLD, "chat", {"prompt_cache_retention": "in_memory"}, None, None),  # the client's
        (NEW, "synthesis", {}, "prompt_cache_options", {"ttl": "12h"}),
        (NEW, "synthesis", {"prompt_cache_options": {"mode": "implicit"}}, "prompt_cache_options",
         {"mode": "implicit", "ttl": "12h"}),
        (NEW, "chat", {}, None, None),  # no ttl configured for this step
    ],
)  # fmt: skip
def test_retention_per_step(
    model: str, step: str, body: dict[str, Any], field: str | None, value: Any
) -> None:
    request = LLMRequest("openai", {"model": model, "input": "q", **body}, step)
    spec = CATALOG.resolve(model)
    out = prompt_cache.retention(
        request, spec, {"*": "24h", "routing": "in_memory"}, {"synthesis": "12h"}
    )
    if field is None:
        assert out is request
    else:
        assert out.body[field] == value
        assert [r.rule for r in out.rewrites] == [field]


MARK = {"mode": "explicit"}


def test_breakpoints_on_gpt_5_6_chat() -> None:
    request = volatile_openai(
        chat(system(f"Rules.\n{STAMP}"), user("q1"), model=NEW), "move", memory().lines, NOW
    )
    out = prompt_cache.breakpoints(request, CATALOG.resolve(NEW), respect=False)
    messages = out.body["messages"]
    assert messages[0]["content"] == [
        {"type": "text", "text": "Rules.", "prompt_cache_breakpoint": MARK}
    ]
    assert messages[1]["content"][0]["prompt_cache_breakpoint"] == MARK  # before the date
    assert "prompt_cache_breakpoint" not in messages[1]["content"][1]
    # Marks are not part of the cached bytes: the emulator's digests are unchanged.
    spec = CATALOG.resolve(NEW)
    assert spec is not None
    plain = build_chat_prompt(request.body, spec)
    marked = build_chat_prompt(out.body, spec)
    assert [b.digest for b in plain.blocks] == [b.digest for b in marked.blocks]
    assert [b.breakpoint for b in marked.blocks] == [True, True, False]


@pytest.mark.parametrize(
    ("request_", "respect"),
    [
        (chat(system("Rules."), user("q")), False),  # older model: caches every boundary
        (chat(system("Rules."), user("q"), model=NEW,
              prompt_cache_options={"mode": "explicit"}), False),  # the client places them
        (chat(system("Rules."), user([{"type": "text", "text": "q",
                                       "prompt_cache_breakpoint": MARK}]), model=NEW), True),
        (responses(instructions="Rules.", input="q"), False),  # nothing markable
    ],
)  # fmt: skip
def test_no_breakpoints_where_they_do_not_belong(request_: LLMRequest, respect: bool) -> None:
    spec = CATALOG.resolve(str(request_.body["model"]))
    assert prompt_cache.breakpoints(request_, spec, respect) is request_


def test_the_pipeline_end_to_end_and_its_fingerprint() -> None:
    body = {
        "model": "gpt-4.1",
        "messages": [system(f"Rules. \n{STAMP}"), user("q")],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    out = rewrite(LLMRequest("openai", body, "chat"), context(now=NOW), OPENAI_STAGES)
    rules = [r.rule for r in out.rewrites]
    assert rules == ["pin", "whitespace", "volatile_moved", "prompt_cache_key"]
    assert out.body["model"] == OLD
    assert out.fingerprint is not None
    assert out.min_cacheable_tokens == 1024
    assert layers(out.body)["system"] == [{"type": "text", "text": "Rules."}]


def test_wire_text_and_error_events() -> None:
    completion = {
        "choices": [{"message": {"content": "hi", "tool_calls": [
            {"function": {"name": "f", "arguments": "{}"}}]}}]
    }  # fmt: skip
    assert chat_text(orjson.dumps(completion)) == 'hi{"tool_use":"f","input":"{}"}'
    response = {"output": [{"type": "message", "content": [{"type": "output_text", "text": "a"}]}]}
    assert response_text(orjson.dumps(response)) == "a"
    (chunk,) = SSEDecoder().feed(OPENAI_CHAT.stream_error_event("cut"))
    assert orjson.loads(chunk.data)["error"]["message"] == "cut"
    (event,) = SSEDecoder().feed(OPENAI_RESPONSES.stream_error_event("cut"))
    assert event.event == "error"
    assert orjson.loads(event.data)["message"] == "cut"


@pytest.mark.parametrize(
    ("model", "usage", "expected"),
    [
        # gpt-4.1: 2 input, 0.50 cached (0.25x), 8 output; no write charge before GPT-5.6.
        ("gpt-4.1", Usage(input=1_000, output=500, cache_read=4_000),
         1_000 * 2 + 500 * 8 + 4_000 * 0.5),
        ("gpt-4.1-2025-04-14", Usage(cache_read=1_000_000), 0.5e6),
        # gpt-5.6-terra: 2 input, 0.20 cached, 2.50 write (1.25x), 12 output.
        ("gpt-5.6-terra", Usage(input=1_000, output=100, cache_read=10_000, cache_write_5m=2_000),
         1_000 * 2 + 100 * 12 + 10_000 * 0.2 + 2_000 * 2.5),
        ("gpt-5.6-luna", Usage(input=100_000, cache_write_5m=100_000), 0.2e5 + 0.25e5),
        # Past 272K prompt tokens every token costs twice as much (docs/wire.md).
        ("gpt-5.6-luna", Usage(input=200_000, cache_write_5m=100_000), 2 * (0.4e5 + 0.25e5)),
    ],
)  # fmt: skip
def test_openai_prices(model: str, usage: Usage, expected: float) -> None:
    assert Pricing.load().cost("openai", model, usage) == pytest.approx(expected / 1e6)


# Codex's responses-lite shape (GPT-6 models): the tools sit in an input item, no `tools`.
def tools_item(*names: str) -> dict[str, Any]:
    functions = [{"type": "function", "name": n, "parameters": {}} for n in names]
    namespace = {"type": "namespace", "name": "functions", "description": "", "tools": functions}
    return {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [namespace]}


def developer(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "developer",
            "content": [{"type": "input_text", "text": text}]}  # fmt: skip


def lite(*names: str, rules: str = "Rules.") -> LLMRequest:
    ask = user([{"type": "input_text", "text": "q"}])
    return responses(model="gpt-6.2-sol", input=[tools_item(*names), developer(rules), ask])


def test_a_tools_item_stays_in_place_while_dates_move() -> None:
    request = lite("exec", rules=f"Rules.\n{STAMP}")
    out = volatile_openai(request, "move", memory().lines, NOW)
    assert [r.rule for r in out.rewrites] == ["volatile_moved"]
    assert out.body["input"][0] is request.body["input"][0]  # the same item, untouched
    # The developer message keeps its part list (no part list becomes a string).
    assert out.body["input"][1]["content"] == [{"type": "input_text", "text": "Rules."}]
    assert out.body["input"][2]["content"][-1] == {"type": "input_text", "text": STAMP}
    assert out.stable_system_blocks == 2


def test_a_tools_item_is_part_of_the_prompts_tools_and_family() -> None:
    assert [t["name"] for t in layers(lite("exec").body)["tools"]] == ["functions"]
    assert len(layers(lite("exec").body)["system"]) == 1  # the developer message alone

    def key(request: LLMRequest) -> str:
        return str(prompt_cache.cache_key(request).body["prompt_cache_key"])

    assert key(lite("exec")) == key(lite("exec"))
    assert key(lite("exec")) != key(lite("exec", "wait"))  # other tools, another family


def test_the_pipeline_leaves_a_tools_item_as_it_came() -> None:
    request = LLMRequest("openai", lite("exec", rules=f"Rules. \n{STAMP}").body, "chat")
    out = rewrite(request, context(now=NOW), OPENAI_STAGES)
    assert out.body["input"][0] == tools_item("exec")
    assert "volatile_moved" in [r.rule for r in out.rewrites]
