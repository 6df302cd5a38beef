"""Runs under the anthropic 1.x SDK (its own import path) and prints what it saw as JSON.

Invoked by test_emulator_sdk1.py with PYTHONPATH pointing at the 1.x install; argv: base URL, key.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anthropic

base_url, api_key = sys.argv[1], sys.argv[2]
sent: list[dict[str, str]] = []
client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)
client._client.event_hooks["request"].append(
    lambda request: sent.append({"url": str(request.url), **dict(request.headers)})
)
messages: Any = [{"role": "user", "content": "REPLY: hello from one"}]
system: Any = [{"type": "text", "text": "Policy. " * 700, "cache_control": {"type": "ephemeral"}}]

created = client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=messages)
with client.messages.stream(model="claude-sonnet-4-6", max_tokens=50, messages=messages) as stream:
    streamed = stream.get_final_text()
beta = client.beta.messages.create(
    model="claude-sonnet-4-6", max_tokens=50, messages=messages, betas=["context-1m-2025-08-07"]
)
counted = client.messages.count_tokens(model="claude-sonnet-4-6", system=system, messages=messages)
usages = [
    client.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, system=system, messages=messages
    ).usage.model_dump()
    for _ in range(2)
]
try:
    client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=5,
        messages=messages,
        extra_headers={"x-emulator-fault": "529"},
    )
    overloaded = "no error"
except anthropic.APIStatusError as error:
    overloaded = f"{type(error).__name__} {error.status_code}"

print(
    json.dumps(
        {
            "version": anthropic.__version__,
            "created": created.content[0].text,
            "streamed": streamed,
            "beta": beta.content[0].text,
            "counted": counted.input_tokens,
            "usages": usages,
            "overloaded": overloaded,
            "sent": sent,
        }
    )
)
