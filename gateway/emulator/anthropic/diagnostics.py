"""Cache-miss diagnostics: why a request could not reuse the prefix of an earlier one.

The request and response fields: docs/wire.md#anthropic-prompt-caching.

Keeps each served message's prompt fingerprint in a bounded LRU; the JSON shapes are those of
SDK a2.12 `types/cache_miss_*.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.emulator.anthropic.prompt import Prompt


@dataclass(frozen=True, slots=True)
class _Fingerprint:
    workspace: str
    model: str
    speed: str
    tools_digest: bytes
    system_digest: bytes
    settings_digest: bytes
    messages_digests: tuple[bytes, ...]
    tools_tokens: int  # cumulative prompt tokens at the end of tools, system, each message
    system_tokens: int
    messages_tokens: tuple[int, ...]


def _common_prefix(before: Sequence[bytes], after: Sequence[bytes]) -> int:
    """How many leading messages match; digests are cumulative, so one match implies all before."""
    low, high = 0, min(len(before), len(after))
    while low < high:
        middle = (low + high + 1) // 2
        if before[middle - 1] == after[middle - 1]:
            low = middle
        else:
            high = middle - 1
    return low


def _missed(kind: str, tokens: int) -> dict[str, Any]:
    return {"type": kind, "cache_missed_input_tokens": max(tokens, 0)}


class CacheDiagnostics:
    """Records served prompts by message id; explains a miss against one of them."""

    def __init__(self, max_records: int = 10_000) -> None:
        self.max_records = max_records
        self._records: OrderedDict[str, _Fingerprint] = OrderedDict()

    def record(self, message_id: str, workspace: str, prompt: Prompt) -> None:
        self._records[message_id] = _Fingerprint(
            workspace=workspace,
            model=prompt.model,
            speed=prompt.speed,
            tools_digest=prompt.tools_digest,
            system_digest=prompt.system_digest,
            settings_digest=prompt.settings_digest,
            messages_digests=prompt.messages_digests,
            tools_tokens=prompt.tools_tokens,
            system_tokens=prompt.system_tokens,
            messages_tokens=prompt.messages_tokens,
        )
        self._records.move_to_end(message_id)
        while len(self._records) > self.max_records:
            self._records.popitem(last=False)

    def diagnose(
        self, previous_message_id: str, workspace: str, prompt: Prompt
    ) -> dict[str, Any] | None:
        """The `cache_miss_reason` object, or None when the previous prefix is fully reused."""
        before = self._records.get(previous_message_id)
        # Another workspace's message is as invisible as an unknown one (caches are per workspace).
        if before is None or before.workspace != workspace:
            return {"type": "previous_message_not_found"}
        total = before.messages_tokens[-1] if before.messages_tokens else before.system_tokens
        # `cache_missed_input_tokens`: what the previous prompt had beyond the shared prefix.
        if before.model != prompt.model or before.speed != prompt.speed:
            return _missed("model_changed", total)
        if before.tools_digest != prompt.tools_digest:
            return _missed("tools_changed", total)
        if before.system_digest != prompt.system_digest:
            return _missed("system_changed", total - before.tools_tokens)
        if before.settings_digest != prompt.settings_digest:
            return {"type": "unavailable"}
        common = _common_prefix(before.messages_digests, prompt.messages_digests)
        if common == len(before.messages_digests):
            return None
        reused = before.messages_tokens[common - 1] if common else before.system_tokens
        return _missed("messages_changed", total - reused)
