"""Recorded client sessions as fixtures (tests/fixtures/recordings/*.jsonl): load and walk.

A fixture is JSON lines written by tests/support/scrub.py: a `meta` line, then each call
(`seq`, `method`, `path`, `headers`, `body`, `status`…) after any `shared` lines it refers
to. A body field that repeats across calls (the tools, the system prompt, each long message
or input item) is stored once as `{"shared": id, "value": …}` and referenced as
`{"$shared": id}`; `load` resolves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ITEMS = ("messages", "input")  # lists whose items may be shared
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


@dataclass(frozen=True)
class Call:
    seq: int
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: dict[str, Any]
    status: int

    @property
    def wire(self) -> str:
        """anthropic | responses | chat: which API the call is for."""
        route = self.path.split("?")[0]
        return {"/v1/messages": "anthropic", "/v1/responses": "responses"}.get(route, "chat")

    def raw_body(self) -> bytes:
        """The body as a client's JSON encoder writes it: compact, UTF-8."""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Fixture:
    name: str
    meta: dict[str, Any]
    calls: list[Call]


def load(path: Path) -> Fixture:
    meta: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    calls: list[Call] = []
    for line in path.read_text("utf-8").splitlines():
        entry = json.loads(line)
        if "meta" in entry:
            meta = entry["meta"]
        elif "shared" in entry:
            shared[entry["shared"]] = entry["value"]
        else:

            def resolved(value: Any) -> Any:
                if isinstance(value, dict) and set(value) == {"$shared"}:
                    return shared[value["$shared"]]
                return value

            body = {
                key: [resolved(item) for item in value] if key in ITEMS else resolved(value)
                for key, value in entry["body"].items()
            }
            headers = [(k, v) for k, v in entry["headers"]]
            calls.append(
                Call(entry["seq"], entry["method"], entry["path"], headers, body, entry["status"])
            )
    return Fixture(path.stem, meta, calls)


def all_fixtures() -> list[Fixture]:
    return [load(path) for path in sorted(FIXTURES.glob("*.jsonl"))]


def bench_bodies() -> dict[str, bytes]:
    """Real-size request bodies for the benchmarks (bench/overhead.py), streaming, as the
    clients sent them: a Claude Code session's first turn (~116 KB) and its largest (over
    300 KB, after many tool results), and a Codex session's first and largest (~42 KB, on
    the Responses API), with models the emulator serves."""
    bodies: dict[str, bytes] = {}
    for fixture, prefix in (("claude-long", "claude-code"), ("codex-projects", "codex")):
        session = load(FIXTURES / f"{fixture}.jsonl")
        first, late = session.calls[0], max(session.calls, key=lambda call: len(call.raw_body()))
        bodies[f"{prefix}-first-turn"] = first.raw_body()
        bodies[f"{prefix}-late-turn"] = late.raw_body()
    return bodies


def main() -> None:
    """`python -m tests.support.fixtures DIR`: writes bench_bodies() as DIR/<name>.json."""
    import sys

    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in bench_bodies().items():
        (folder / f"{name}.json").write_bytes(body)
        print(f"{folder / name}.json: {len(body):,} bytes")


if __name__ == "__main__":
    main()
