"""The documentation holds together: the README stays a front page, every relative link in
it and in docs/ reaches a file (and a heading) that exists, and no tracked file refers to
material outside the repository — a newcomer has only the repository."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
FRONT_PAGE_MAX_LINES = 250

# What a file outside the repository looks like when cited: the shared notes the project
# started from (by path or by name), their section marks ("WIRE B.2"), and the issue
# tracker ("issue 13", "the shared-state issue", "finding 7"), which a clone does not have.
OUTSIDE = re.compile(
    r"\.\./shared"
    r"|\b(?:WIRE|STYLE|ARCHITECTURE|CONTAINERS)\.md"
    r"|\bseed-cost"
    r"|\bWIRE [A-E](?:\.\d)?\b"
    r"|(?i:\bissues? #?\d)"
    r"|(?i:\bthe [a-z-]+ issue\b)"
    r"|(?i:\bfindings? \d)"
)
# Recorded client traffic is data, not a citation: what the clients sent stays as sent.
NOT_CITATIONS = ("tests/fixtures/",)

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


@cache
def tracked() -> tuple[str, ...]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return tuple(name for name in out.decode().split("\0") if name)


def prose(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub renders for a Markdown file."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path):
        if not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower().replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def documents() -> list[Path]:
    names = [n for n in tracked() if n.endswith(".md")]
    chosen = [n for n in names if n == "README.md" or n.startswith(("docs/", "bench/"))]
    return [REPO / n for n in chosen if (REPO / n).exists()]


def test_the_readme_is_a_front_page() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < FRONT_PAGE_MAX_LINES
    # The first commands a newcomer meets are the two that need nothing installed.
    first_block = "\n".join(lines).split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_reach_a_file_and_a_heading(doc: Path) -> None:
    broken = []
    for line in prose(doc):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            name, _, anchor = target.partition("#")
            path = (doc.parent / name).resolve() if name else doc
            if not path.exists():
                broken.append(f"{target}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{target}: no such heading")
    assert not broken, broken


def texts() -> list[tuple[str, str]]:
    """Every tracked text file but this one and recorded traffic, as (path, text)."""
    this = Path(__file__).resolve().relative_to(REPO).as_posix()
    found = []
    for name in tracked():
        if name == this or name.startswith(NOT_CITATIONS):
            continue
        try:
            found.append((name, (REPO / name).read_text(encoding="utf-8")))
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
            continue  # deleted in the work tree, a submodule, or binary
    return found


def test_no_tracked_file_cites_anything_outside_the_repository() -> None:
    cited = []
    for name, text in texts():
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                cited.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not cited, "\n".join(cited)


def test_files_cite_docs_that_exist() -> None:
    """Code cites a provider fact as `docs/wire.md#section`: the page and the section exist."""
    cites = re.compile(r"(?<![\w/.])docs/([\w-]+\.md)(?:#([\w-]+))?")
    missing = []
    for name, text in texts():
        for page, anchor in cites.findall(text):
            path = REPO / "docs" / page
            if not path.exists() or (anchor and anchor not in anchors(path)):
                missing.append(f"{name}: docs/{page}{'#' + anchor if anchor else ''}")
    assert not missing, missing


# A module or package of the gateway as the documentation names it: `gateway/relay.py`,
# `gateway/cache/`. Not inside a longer path (a URL, `tests/unit/gateway/...`).
GATEWAY_PATH = re.compile(r"(?<![\w./-])gateway/(?:[\w-]+/)*(?:[\w-]+\.py\b)?")


def reference_pages() -> list[Path]:
    """The front page and the reference: what a reader follows to the code. (Benchmark
    reports under bench/results/ describe the code they measured, at its commit.)"""
    chosen = ("README.md", "bench/README.md")
    return [
        p
        for p in documents()
        if p.relative_to(REPO).as_posix() in chosen or p.parent.name == "docs"
    ]


@pytest.mark.parametrize("doc", reference_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_gateway_paths_named_in_docs_exist(doc: Path) -> None:
    """A code location the docs cite (a limit's, a defence's) is where a reader will look."""
    named = set(GATEWAY_PATH.findall(doc.read_text(encoding="utf-8")))
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, missing


def test_the_architecture_names_modules_that_exist() -> None:
    """docs/architecture.md names modules and packages relative to gateway/ (`server/`,
    `endpoint/flow.py`, `relay.py`): each is a module or package somewhere in gateway/ (or
    a path from the repository's root)."""
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`((?:[a-z_]+/)*(?:[a-z_]+\.py|[a-z_]+/))`", page))
    tree = {p.relative_to(REPO / "gateway").as_posix() for p in (REPO / "gateway").rglob("*")}
    tree |= {f"{name}/" for name in tree}
    missing = sorted(
        n
        for n in names
        if not (REPO / n).exists() and not any(t == n or t.endswith("/" + n) for t in tree)
    )
    assert len(names) > 40  # the page walks the tree
    assert not missing, missing


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("in `gateway/relay.py`, ", ["gateway/relay.py"]),
        ("(gateway/cache/bounded.py, `LearnedState`)", ["gateway/cache/bounded.py"]),
        ("`gateway/state/` holds", ["gateway/state/"]),
        ("gateway/catalog/models.yaml", ["gateway/catalog/"]),
        ("https://example.com/gateway/x.py and tests/unit/gateway/y.py", []),
    ],
)
def test_a_gateway_path_is_recognized(text: str, found: list[str]) -> None:
    assert GATEWAY_PATH.findall(text) == found


@pytest.mark.parametrize(
    "line",
    [
        "see ../shared/WIRE.md A.5",
        "(WIRE B.3)",
        "Names are a contract (ARCHITECTURE.md)",
        "fakes, not mocks (STYLE.md)",
        "as the shared-state issue says",
        "(issue 13, item 7)",
        "Issue 14, finding 2: the line stays",
    ],
)
def test_an_outside_citation_is_recognized(line: str) -> None:
    assert OUTSIDE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "Stream usage is cumulative (docs/wire.md#anthropic-streams)",
        "https://github.com/anthropics/anthropic-sdk-python/issues/1194",
        "findings: whitespace_drift, volatile_line_kept",
    ],
)
def test_an_inside_reference_passes(line: str) -> None:
    assert not OUTSIDE.search(line)
