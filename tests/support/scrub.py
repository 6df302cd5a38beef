"""Turn a raw recording (tests/support/recording_proxy.py) into a committable fixture.

    .venv/bin/python -m tests.support.scrub .cache/recordings tests/fixtures/recordings

A recording holds the clients' own system prompts, tool descriptions and schemas: their
text, not ours to commit. A fixture keeps what the recording teaches — its shape — and
replaces that text with generated text:

- kept as is: roles, block and item types, the order and number of messages, blocks,
  tools and properties, `cache_control` and where it sits, models, numbers, booleans,
  enumerated fields (type, role, status, effort…), section markers (XML-ish tags such as
  `<env>` or `<permissions instructions>`), the emulator directives `USE_TOOL:`/`REPLY:`,
  and the headers that steer behaviour (anthropic-beta, anthropic-version, x-stainless-*,
  user-agent…);
- replaced, deterministically (seeded; equal input, equal output): every other text, line
  by line, with generated words of the same lengths (spaces, punctuation and line breaks
  stay where they were, so sizes and line structure hold); tool and property names by
  generated names of the same length, the same everywhere in the recording; ids (uuids,
  toolu_…, hex) by ids of the same shape, consistently, so tool_use ids still match their
  tool_result ids and a session id in a header still matches the body's;
- recognizable but different: dates and times keep their format and shift by a fixed
  number of days (and hours) per recording, so date rules still find them; file paths keep
  their shape with each component renamed consistently, so a project's working directory
  is the same line on every turn and different between projects.

Lines equal in two requests stay equal, lines that differ stay different: prompt-cache
prefixes and the lines a rule learns to vary behave as in the recording. Only API calls
are kept (POST to /v1/messages, /v1/responses, /v1/chat/completions); the fixture's first
line is a `meta` object (client, versions, calls, the shifted recording date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.recording_proxy import CREDENTIAL_HEADERS

SCRUBBER_VERSION = 1
API_PATHS = ("/v1/messages", "/v1/responses", "/v1/chat/completions")
# Header values that are shape, not content: kept verbatim.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "accept",
        "accept-encoding",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "user-agent",
        "x-app",
        "openai-beta",
        "originator",
        "x-codex-beta-features",
        "x-openai-internal-codex-responses-lite",
    }
)
# Fields every call of a session repeats: written once per fixture, then referenced.
SHARED_FIELDS = ("tools", "system", "instructions")
# And each long message or input item, the same on every later turn.
SHARED_ITEMS = ("messages", "input")
MIN_SHARED_BYTES = 2048
# Credentials too, should a recording hold one (the proxy already leaves them out).
DROPPED_HEADERS = frozenset({"host", "content-length", "connection", *CREDENTIAL_HEADERS})
KEPT_RESPONSE_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
# JSON keys whose string values are enumerations or model names: kept.
KEPT_VALUES = frozenset(
    {
        "type",
        "role",
        "model",
        "status",
        "effort",
        "verbosity",
        "ttl",
        "summary",
        "$schema",
        "tool_choice",
        "truncation",
        "service_tier",
        "include",
        "phase",
        "object",
        "stop_reason",
        "format",
        "detail",
        "speed",
        "prompt_cache_retention",
        "keep",
    }
)
NAME_KEYS = frozenset({"name"})
ID_KEYS = frozenset({"id", "tool_use_id", "call_id", "previous_response_id"})
DIRECTIVES = ("USE_TOOL:", "REPLY:")

TAG = re.compile(r"</?[A-Za-z][\w:-]*(?: [A-Za-z][\w-]*)?/?>")
UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
# toolu_01…, call_…, msg_…: a prefix and a tail with a digit (not a snake_case word).
PREFIXED_ID = re.compile(r"\b[a-z]{2,8}_(?=[A-Za-z]*\d)[A-Za-z0-9]{8,}\b")
HEX = re.compile(r"\b[0-9a-f]{12,}\b")
PATH = re.compile(r"(?<![\w/])(?:~|\.{1,2})?(?:/[\w.@+-]+)+/?")
ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
MONTHS = [
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
]
LONG_DATE = re.compile(
    rf"\b(?:(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),?\s+)?"
    rf"({'|'.join(MONTHS)})\s+(\d{{1,2}})(?:st|nd|rd|th)?,\s+(\d{{4}})\b"
)
TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?\b")
WORD = re.compile(r"[A-Za-z0-9_]+")
VOWELS, CONSONANTS = "aeiou", "bcdfghjklmnprstvwz"


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _shaped(token: str, rng: random.Random) -> str:
    """Same length and character classes: digit for digit, letter for letter (case kept),
    hex for hex when the token is all hex; anything else kept."""
    hexadecimal = len(token) >= 8 and all(c in "0123456789abcdefABCDEF-" for c in token)
    out = []
    for c in token:
        if c.isdigit():
            out.append(
                rng.choice("0123456789") if not hexadecimal else rng.choice("0123456789abcdef")
            )
        elif c.isalpha() and c.isascii():
            letters = "abcdef" if hexadecimal else "abcdefghijklmnopqrstuvwxyz"
            pick = rng.choice(letters)
            out.append(pick.upper() if c.isupper() else pick)
        else:
            out.append(c)
    return "".join(out)


def _word(length: int, rng: random.Random, like: str) -> str:
    """A pronounceable generated word of `length` letters, cased like `like`."""
    letters = "".join(rng.choice(VOWELS if i % 2 else CONSONANTS) for i in range(length))
    if like.isupper() and length > 1:
        return letters.upper()
    if like[:1].isupper():
        return letters[:1].upper() + letters[1:]
    return letters


class Scrubber:
    """One recording's consistent maps: names, ids, path components, the date shift."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = _rng("shift", seed)
        self.day_shift = dt.timedelta(days=-rng.randint(40, 400))
        self.hour_shift = rng.randint(1, 23)
        self.names: dict[str, str] = {}
        self.tokens: dict[str, str] = {}

    # ---------------------------------------------------------------- names and ids

    def name(self, value: str) -> str:
        """A tool or property name: a generated name of the same length, the same each time."""
        if value not in self.names:
            rng = _rng("name", self.seed, value)
            self.names[value] = _shaped(value, rng)
        return self.names[value]

    def token(self, value: str) -> str:
        if value not in self.tokens:
            prefix, _, rest = (
                value.partition("_") if PREFIXED_ID.fullmatch(value) else ("", "", value)
            )
            rng = _rng("token", self.seed, value)
            self.tokens[value] = (prefix + "_" if prefix else "") + _shaped(rest, rng)
        return self.tokens[value]

    def path(self, value: str) -> str:
        parts = value.split("/")
        return "/".join(
            part if part in ("", "~", ".", "..") else self._component(part) for part in parts
        )

    def _component(self, part: str) -> str:
        stem, dot, extension = part.rpartition(".")
        if dot and stem and len(extension) <= 4:  # keep the extension: a file stays a .py
            return self._generated(stem) + "." + extension
        return self._generated(part)

    def _generated(self, part: str) -> str:
        key = "path:" + part
        if key not in self.tokens:
            self.tokens[key] = _shaped(part, _rng("path", self.seed, part))
        return self.tokens[key]

    # ---------------------------------------------------------------- dates

    def _date(self, year: int, month: int, day: int) -> dt.date | None:
        try:
            return dt.date(year, month, day) + self.day_shift
        except ValueError:
            return None

    def _iso(self, match: re.Match[str]) -> str:
        date = self._date(int(match[1]), int(match[2]), int(match[3]))
        return match[0] if date is None else date.isoformat()

    def _slash(self, match: re.Match[str]) -> str:
        date = self._date(int(match[3]), int(match[1]), int(match[2]))
        return match[0] if date is None else f"{date.month}/{date.day}/{date.year}"

    def _long(self, match: re.Match[str]) -> str:
        date = self._date(int(match[3]), MONTHS.index(match[1]) + 1, int(match[2]))
        if date is None:
            return match[0]
        text = f"{MONTHS[date.month - 1]} {date.day}, {date.year}"
        return f"{date.strftime('%A')}, {text}" if match[0][:1] != match[1][:1] else text

    def _time(self, match: re.Match[str]) -> str:
        hour = (int(match[1]) + self.hour_shift) % 24
        width = len(match[1])
        seconds = f":{match[3]}" if match[3] is not None else ""
        return f"{hour:0{width}d}:{match[2]}{seconds}"

    def shift_date(self, iso: str) -> str:
        return self._iso(ISO_DATE.fullmatch(iso)) if ISO_DATE.fullmatch(iso) else iso  # type: ignore[arg-type]

    # ---------------------------------------------------------------- text

    def text(self, value: str) -> str:
        return "\n".join(self.line(line) for line in value.split("\n"))

    def line(self, line: str) -> str:
        if not line.strip():
            return line
        for directive in DIRECTIVES:
            if line.startswith(directive):
                rest = line[len(directive) :].strip()
                if directive == "USE_TOOL:":
                    return f"{directive} {self.name(rest)}"
                return line
        rng = _rng("line", self.seed, line)
        # Spans kept or replaced consistently, found first; words between them generated.
        spans: list[tuple[int, int, str]] = []
        taken = [False] * len(line)

        def claim(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> None:
            for match in pattern.finditer(line):
                start, end = match.span()
                if end > start and not any(taken[start:end]):
                    spans.append((start, end, replace(match)))
                    for i in range(start, end):
                        taken[i] = True

        claim(TAG, lambda m: m[0])
        claim(UUID, lambda m: self.token(m[0]))
        claim(PREFIXED_ID, lambda m: self.token(m[0]))
        claim(HEX, lambda m: self.token(m[0]))
        claim(LONG_DATE, self._long)
        claim(ISO_DATE, self._iso)
        claim(SLASH_DATE, self._slash)
        claim(TIME, self._time)
        claim(PATH, lambda m: self.path(m[0]))
        out: list[str] = []
        at = 0
        for start, end, replacement in sorted(spans):
            out.append(self._words(line[at:start], rng))
            out.append(replacement)
            at = end
        out.append(self._words(line[at:], rng))
        return "".join(out)

    def _words(self, text: str, rng: random.Random) -> str:
        def generated(match: re.Match[str]) -> str:
            word = match[0]
            if any(c.isdigit() for c in word):
                return _shaped(word, rng)
            return _word(len(word), rng, word)

        return WORD.sub(generated, text)

    # ---------------------------------------------------------------- JSON

    def value(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return self.object(value)
        if isinstance(value, list):
            if key == "required":
                return [self.name(v) if isinstance(v, str) else self.value(v) for v in value]
            return [self.value(v, key) for v in value]
        if not isinstance(value, str):
            return value
        if key in KEPT_VALUES:
            return value
        if key in NAME_KEYS:
            return self.name(value)
        if key in ID_KEYS:
            return self.token(value)
        if key == "arguments":
            return self.arguments(value)
        return self.text(value)

    def object(self, value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "properties" and isinstance(item, dict):
                out[key] = {self.name(k): self.value(v) for k, v in item.items()}
            elif key == "input" and value.get("type") == "tool_use" and isinstance(item, dict):
                out[key] = self.tool_input(item)
            elif key == "cache_control":
                out[key] = item
            else:
                out[key] = self.value(item, key)
        return out

    def tool_input(self, value: Any) -> Any:
        """A tool call's arguments: property names as in the schema, values generated."""
        if isinstance(value, dict):
            return {self.name(k): self.tool_input(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tool_input(v) for v in value]
        return self.text(value) if isinstance(value, str) else value

    def arguments(self, raw: str) -> str:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return self.text(raw)
        return json.dumps(self.tool_input(parsed), ensure_ascii=False, separators=(",", ":"))

    def headers(self, headers: list[list[str]]) -> list[list[str]]:
        out = []
        for name, value in headers:
            lower = name.lower()
            if lower in DROPPED_HEADERS:
                continue
            kept = lower in KEPT_HEADERS or lower.startswith("x-stainless-")
            out.append([name, value if kept else self.text(value)])
        return out


def _client(headers: list[list[str]]) -> str:
    found = {k.lower(): v for k, v in headers}
    return found.get("user-agent", "unknown")


def scrub_recording(entries: list[dict[str, Any]], name: str, seed: int) -> list[dict[str, Any]]:
    """The fixture's lines: a meta object, then one object per API call."""
    scrubber = Scrubber(seed)
    ended = {e["seq"]: e for e in entries if "method" not in e}
    entries = [{**e, **ended.get(e["seq"], {})} for e in entries if "method" in e]
    calls = [
        e for e in entries if e.get("method") == "POST" and e["path"].split("?")[0] in API_PATHS
    ]
    other = sorted({f"{e['method']} {e['path']}" for e in entries if e not in calls})
    recorded = dt.datetime.fromtimestamp(calls[0]["time"], dt.UTC).date() if calls else None
    lines: list[dict[str, Any]] = []
    shared: dict[str, str] = {}  # a large field's JSON -> its id in the fixture
    for call in calls:
        response_headers = [
            [k, v]
            for k, v in call.get("response_headers", [])
            if k.lower() in KEPT_RESPONSE_HEADERS
        ]
        lines.append(
            {
                "seq": call["seq"],
                "method": call["method"],
                "path": call["path"],
                "headers": scrubber.headers(call["headers"]),
                "body": _deduplicated(scrubber.value(call["body"]), shared, lines),
                "recorded_body_bytes": call["body_bytes"],
                "status": call["status"],
                "response_headers": response_headers,
                "response_bytes": call.get("response_bytes"),
            }
        )
    meta = {
        "fixture": name,
        "format": "a meta line; calls, each after the shared values it references",
        "scrubber_version": SCRUBBER_VERSION,
        "seed": seed,
        "client": _client(calls[0]["headers"]) if calls else None,
        "calls": len(calls),
        "other_requests": other,
        # The recording's day, shifted as every date in the fixture is: a line holding it
        # was a "now" stamp when recorded.
        "today": None if recorded is None else scrubber.shift_date(recorded.isoformat()),
        "models": sorted(
            {str(c["body"].get("model")) for c in calls if isinstance(c["body"], dict)}
        ),
        "max_body_bytes": max((c["body_bytes"] for c in calls), default=0),
    }
    return [{"meta": meta}, *lines]


def _deduplicated(body: Any, shared: dict[str, str], lines: list[dict[str, Any]]) -> Any:
    """The body with each large field seen before (tools, system prompt) as a reference:
    `{"$shared": id}`, its value on an earlier `{"shared": id, "value": …}` line; likewise
    each long message of the conversation, which every later call repeats."""
    if not isinstance(body, dict):
        return body

    def reference(key: str, value: Any) -> Any:
        dump = json.dumps(value, ensure_ascii=False)
        if len(dump) < MIN_SHARED_BYTES:
            return value
        if dump not in shared:
            shared[dump] = f"{key}-{len(shared)}"
            lines.append({"shared": shared[dump], "value": value})
        return {"$shared": shared[dump]}

    out = dict(body)
    for key in SHARED_FIELDS:
        if key in body:
            out[key] = reference(key, body[key])
    for key in SHARED_ITEMS:
        if isinstance(body.get(key), list):
            out[key] = [reference(key, item) for item in body[key]]
    return out


def scrub_file(raw: Path, out: Path, seed: int) -> dict[str, Any]:
    entries = [json.loads(line) for line in raw.read_text("utf-8").splitlines() if line.strip()]
    lines = scrub_recording(entries, raw.stem, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as file:
        for line in lines:
            file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    meta: dict[str, Any] = lines[0]["meta"]
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw", type=Path, help="a raw .jsonl recording, or a folder of them")
    parser.add_argument("out", type=Path, help="the fixture .jsonl, or a folder")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    pairs = (
        [(raw, args.out / raw.name) for raw in sorted(args.raw.glob("*.jsonl"))]
        if args.raw.is_dir()
        else [(args.raw, args.out)]
    )
    for raw, out in pairs:
        meta = scrub_file(raw, out, args.seed)
        print(f"{out}: {meta['calls']} calls, {out.stat().st_size:,} bytes, {meta['client']}")


if __name__ == "__main__":
    main()
