"""The recording tools: the scrubber keeps a recording's shape and none of its text; the
fixtures load as recorded; the judge of upstream bodies tells a listed rewrite from a
change of meaning (tests/support/scrub.py, fixtures.py, rewrite_diff.py)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from gateway.rewrite.volatile import is_volatile
from tests.support.fixtures import all_fixtures
from tests.support.rewrite_diff import Context, judge, varying_system_lines
from tests.support.scrub import scrub_recording

SYSTEM = (
    "You are Marvin, the helpful assistant of Zephyrine Corp.\n"
    "<env>\n"
    "Primary working directory: /home/alice/projects/zephyr-api\n"
    "Today's date is 2026-11-30.\n"
    "</env>\n"
    "\n"
    "Example: Thursday becomes 2026-03-05 in saved notes."
)
TOOL = {
    "name": "Quarterback",
    "description": "Runs quarterly reconciliation.\nUse sparingly.",
    "input_schema": {
        "type": "object",
        "properties": {"ledger_path": {"type": "string", "description": "Which ledger."}},
        "required": ["ledger_path"],
    },
}


def recording() -> list[dict[str, Any]]:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [TOOL],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Reconcile the ledger."}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_01AbCdEf2345",
                        "name": "Quarterback",
                        "input": {"ledger_path": "/home/alice/projects/zephyr-api/ledger.csv"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01AbCdEf2345",
                        "content": "Reconciled 14 rows at 10:42:07.",
                    }
                ],
            },
        ],
    }
    headers = [
        ["x-api-key", "sk-ant-secret"],
        ["anthropic-beta", "claude-code-20250219"],
        ["x-claude-code-session-id", "ec9267c6-4a1d-42a7-8c6a-bffeebcd44f2"],
        ["user-agent", "claude-cli/2.1.197"],
    ]
    return [
        {
            "seq": 0,
            "time": 1796033041.0,
            "method": "POST",
            "path": "/v1/messages?beta=true",
            "headers": headers,
            "body": body,
            "body_bytes": len(json.dumps(body)),
            "status": 200,
            "response_headers": [["content-type", "text/event-stream"]],
        },
        {"seq": 0, "response_bytes": 10, "response_body": "x", "seconds": 0.1},
        {"seq": 1, "time": 1796033042.0, "method": "HEAD", "path": "/", "headers": [], "body": None,
         "body_bytes": 0, "status": 404, "response_headers": []},
    ]  # fmt: skip


def scrubbed(seed: int = 14) -> tuple[dict[str, Any], dict[str, Any]]:
    lines = scrub_recording(recording(), "sample", seed)
    return lines[0]["meta"], lines[-1]


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_no_word_of_the_recorded_text_survives() -> None:
    _, call = scrubbed()
    text = json.dumps(call)
    for word in ("Marvin", "Zephyrine", "alice", "zephyr", "Quarterback", "ledger", "sparingly",
                 "Reconcile", "Primary", "Thursday", "sk-ant-secret", "ec9267c6"):  # fmt: skip
        assert word not in text


def test_shape_is_kept() -> None:
    _, call = scrubbed()
    original = recording()[0]["body"]
    body = call["body"]
    assert [len(s) for s in strings(body)] == [len(s) for s in strings(original)]
    assert [s.count("\n") for s in strings(body)] == [s.count("\n") for s in strings(original)]
    system = body["system"][0]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert system["text"].split("\n")[1] == "<env>"
    assert system["text"].split("\n")[4] == "</env>"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == 32000


def test_dates_shift_in_their_format_and_stay_dates() -> None:
    meta, call = scrubbed()
    lines = call["body"]["system"][0]["text"].split("\n")
    today = re.search(r"\d{4}-\d{2}-\d{2}", lines[3])
    assert today is not None
    assert today[0] != "2026-11-30"
    assert today[0] == meta["today"]  # the recording day, shifted the same way
    assert is_volatile(lines[6])
    assert "2026-03-05" not in lines[6]
    result = call["body"]["messages"][2]["content"][0]["content"]
    assert re.search(r"\b\d{2}:42:07\b", result) is not None
    assert "10:42:07" not in result


def test_names_ids_and_paths_are_renamed_consistently() -> None:
    _, call = scrubbed()
    body = call["body"]
    tool, use = body["tools"][0], body["messages"][1]["content"][0]
    assert use["name"] == tool["name"] != "Quarterback"
    assert len(tool["name"]) == len("Quarterback")
    [prop] = tool["input_schema"]["properties"]
    assert tool["input_schema"]["required"] == [prop]
    assert list(use["input"]) == [prop]
    assert body["messages"][2]["content"][0]["tool_use_id"] == use["id"]
    assert use["id"].startswith("toolu_")
    # The working directory is the same path in the system prompt and in the tool call.
    directory = re.search(r"(/[\w-]+)+", body["system"][0]["text"].split("\n")[2])
    assert directory is not None
    assert use["input"][prop].startswith(directory[0] + "/")
    assert use["input"][prop].endswith(".csv")


def test_headers_keep_what_steers_and_never_a_credential() -> None:
    _, call = scrubbed()
    headers = dict(call["headers"])
    assert "x-api-key" not in {k.lower() for k in headers}
    assert headers["anthropic-beta"] == "claude-code-20250219"
    assert headers["user-agent"] == "claude-cli/2.1.197"
    session = headers["x-claude-code-session-id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", session)
    assert session != "ec9267c6-4a1d-42a7-8c6a-bffeebcd44f2"


def test_scrubbing_is_deterministic_and_seeded() -> None:
    assert scrubbed(14) == scrubbed(14)
    assert scrubbed(14)[1]["body"] != scrubbed(15)[1]["body"]


def test_only_api_calls_are_kept() -> None:
    meta, call = scrubbed()
    assert meta["calls"] == 1
    assert meta["other_requests"] == ["HEAD /"]
    assert call["recorded_body_bytes"] == recording()[0]["body_bytes"]


@pytest.mark.parametrize("fixture", all_fixtures(), ids=lambda f: f.name)
def test_fixture_bodies_are_the_recorded_size(fixture: Any) -> None:
    """Shared values resolve, and each body is as long as the client's was."""
    assert len(fixture.calls) == fixture.meta["calls"] > 0
    raw = {
        json.loads(line).get("seq"): json.loads(line)
        for line in (fixture_path(fixture.name)).read_text("utf-8").splitlines()
    }
    for call in fixture.calls:
        assert len(call.raw_body()) == raw[call.seq]["recorded_body_bytes"]


def fixture_path(name: str) -> Any:
    from tests.support.fixtures import FIXTURES

    return FIXTURES / f"{name}.jsonl"


def test_the_late_turn_body_is_over_300_kb() -> None:
    sizes = [len(call.raw_body()) for fixture in all_fixtures() for call in fixture.calls]
    assert max(sizes) > 300_000


# ------------------------------------------------------------------------ the judge

ANTHROPIC = {
    "model": "m",
    "system": [{"type": "text", "text": "Static rule.\nExample: 2026-03-05 is a date."}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}


def moved_date(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["system"][0]["text"] = "Static rule."
    out["messages"][-1]["content"].append(
        {"type": "text", "text": "Example: 2026-03-05 is a date."}
    )
    return out


def test_a_listed_rule_explains_its_change_and_an_unlisted_one_does_not() -> None:
    upstream = copy.deepcopy(ANTHROPIC)
    upstream["system"][0]["cache_control"] = {"type": "ephemeral"}
    assert judge(ANTHROPIC, upstream, {"cache_breakpoints"}, Context(), True).unexplained == []
    assert judge(ANTHROPIC, upstream, {"whitespace"}, Context(), True).unexplained != []


def test_a_static_example_date_must_not_move_to_the_user_turn() -> None:
    verdict = judge(ANTHROPIC, moved_date(ANTHROPIC), {"volatile_moved"}, Context(), True)
    assert verdict.unexplained == []
    assert len(verdict.role_changes) == 1
    assert verdict.structure_changes == []  # the dates' own part at the end is allowed


def test_a_date_that_varies_or_is_today_may_move() -> None:
    line = "Example: 2026-03-05 is a date."
    varying = Context(varying_lines=frozenset({line}))
    assert (
        judge(ANTHROPIC, moved_date(ANTHROPIC), {"volatile_moved"}, varying, True).role_changes
        == []
    )
    today = Context(today="2026-03-05")
    assert (
        judge(ANTHROPIC, moved_date(ANTHROPIC), {"volatile_moved"}, today, True).role_changes == []
    )


def test_merged_parts_and_a_lifted_section_line_are_structure_changes() -> None:
    client = {
        "model": "m",
        "input": [
            {"role": "developer", "content": [
                {"type": "input_text", "text": "<permissions instructions>\nroots: /a\n"
                                               "</permissions instructions>"},
                {"type": "input_text", "text": "Second part."},
            ]},
            {"role": "user", "content": [{"type": "input_text", "text": "go"}]},
        ],
    }  # fmt: skip
    upstream = copy.deepcopy(client)
    upstream["input"][0]["content"] = (
        "<permissions instructions>\n</permissions instructions>\nSecond part."
    )
    upstream["input"].insert(1, {"role": "developer", "content": "roots: /a"})
    verdict = judge(client, upstream, {"volatile_moved"}, Context(), False)
    assert verdict.role_changes == []
    assert any("structure" in change for change in verdict.structure_changes)
    assert any("lifted out of <permissions instructions>" in c for c in verdict.structure_changes)


def test_varying_lines_are_those_not_in_every_call_of_the_family() -> None:
    def body(directory: str) -> dict[str, Any]:
        return {"system": f"Rules.\ncwd: {directory}", "tools": [{"name": "t"}]}

    assert varying_system_lines([body("/a"), body("/b"), body("/a")]) == {"cwd: /a", "cwd: /b"}
