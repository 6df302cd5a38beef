"""Codex's "responses-lite" request shape for GPT-6 models, through the openai SDK.

Codex 0.171 with its default model (gpt-6.2-sol) sends no `tools` field: its tools sit in an
`additional_tools` input item (role developer) as `namespace` tools holding function and
custom (freeform) tools, and it sends `x-openai-internal-codex-responses-lite: true`. The
emulator used to see no tools there, so `USE_TOOL:` could call none; now a custom tool is
answered with a `custom_tool_call` and a function with a `function_call`, each naming its
namespace, plainly and streamed, directly and through `gateway serve`; the tool's output ends
the loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

MODEL = "gpt-6.2-sol"  # Codex's default: served as its nearest catalog relative
LITE_HEADERS = {"x-openai-internal-codex-responses-lite": "true"}
SCHEMA = {"type": "object", "properties": {"target": {"type": "string"}}, "required": ["target"]}
TOOLS_ITEM = {
    "type": "additional_tools",
    "id": "at_1",
    "role": "developer",
    "tools": [
        {
            "type": "namespace",
            "name": "functions",
            "description": "",
            "tools": [
                {
                    "type": "custom",
                    "name": "exec",
                    "description": "Run code.",
                    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
                },
            ],
        },
        {
            "type": "namespace",
            "name": "collaboration",
            "description": "Agents.",
            "tools": [
                {"type": "function", "name": "list_agents", "strict": False, "parameters": SCHEMA}
            ],
        },
    ],
}
DEVELOPER = {
    "type": "message",
    "role": "developer",
    "content": [{"type": "input_text", "text": "You are a coding agent."}],
}


def lite_input(ask: str, *after: dict[str, Any]) -> Any:
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": ask}]}
    return [TOOLS_ITEM, DEVELOPER, user, *after]


@pytest.fixture(params=["direct", "gateway"])
def client(request: pytest.FixtureRequest, api_key: str) -> Iterator[openai.OpenAI]:
    fixture = "emulator_url" if request.param == "direct" else "gateway_url"
    base_url: str = request.getfixturevalue(fixture)
    with openai.OpenAI(
        base_url=base_url + "/v1", api_key=api_key, max_retries=0, default_headers=LITE_HEADERS
    ) as sdk:
        yield sdk


def test_a_custom_tool_in_additional_tools_is_called(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input=lite_input("USE_TOOL: exec"))
    call = response.output[0]
    assert call.type == "custom_tool_call"
    assert (call.name, call.namespace, call.input) == ("exec", "functions", "example")
    with client.responses.stream(model=MODEL, input=lite_input("USE_TOOL: exec")) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.custom_tool_call_input.delta" in kinds
    streamed = final.output[0]
    assert streamed.type == "custom_tool_call"
    assert (streamed.call_id, streamed.input) == (call.call_id, "example")


def test_a_namespaced_function_is_called_with_its_namespace(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input=lite_input("USE_TOOL: list_agents"))
    call = response.output[0]
    assert call.type == "function_call"
    assert (call.name, call.namespace, call.arguments) == (
        "list_agents",
        "collaboration",
        '{"target":"example"}',
    )


def test_the_custom_tool_output_ends_the_loop(client: openai.OpenAI) -> None:
    ask = "REPLY: done\nUSE_TOOL: exec"
    first = client.responses.create(model=MODEL, input=lite_input(ask))
    call = first.output[0]
    assert call.type == "custom_tool_call"
    echoed = {
        "type": "custom_tool_call",
        "call_id": call.call_id,
        "name": "exec",
        "namespace": "functions",
        "input": call.input,
    }
    output = {
        "type": "custom_tool_call_output",
        "call_id": call.call_id,
        "output": [{"type": "input_text", "text": "Script failed"}],
    }
    second = client.responses.create(model=MODEL, input=lite_input(ask, echoed, output))
    assert second.output_text == "done"
