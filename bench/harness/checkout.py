"""Another commit's gateway beside this tree's: its `gateway/` package (and `config/`, which
`gateway serve` reads from its working directory) extracted with `git archive` into a
temporary directory, run from there with that directory on PYTHONPATH. The installed
dependencies are this environment's; a commit that needs others will not start."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .proxies import REPO


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if done.returncode:
        raise ValueError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout.strip()


def short_commit(rev: str) -> str:
    """`rev`'s abbreviated commit id; ValueError when it names no commit."""
    return git("rev-parse", "--short", f"{rev}^{{commit}}")


@contextmanager
def gateway_tree(rev: str) -> Iterator[Path]:
    """A directory holding commit `rev`'s gateway package, until the block ends."""
    commit = short_commit(rev)
    paths = [p for p in ("gateway", "config") if git("ls-tree", "--name-only", commit, p)]
    with tempfile.TemporaryDirectory(prefix=f"tollgate-{commit}-") as tmp:
        archive = Path(tmp) / "tree.tar"
        git("archive", "--format=tar", f"--output={archive}", commit, *paths)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        archive.unlink()
        yield Path(tmp)
