"""Request ids (gateway/errors.py): `gw_` and 24 hex digits of the system's random source, cut
from bytes read 256 ids at a time; unique, each pool read afresh, none shared after a fork."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from gateway import errors
from gateway.errors import new_request_id

ID = re.compile(r"gw_[0-9a-f]{24}")


def test_ids_are_24_hex_digits_and_do_not_repeat_across_pools() -> None:
    ids = [new_request_id() for _ in range(3 * 256 + 7)]
    assert all(ID.fullmatch(made) for made in ids)
    assert len(set(ids)) == len(ids)


def test_each_pool_is_one_read_of_the_random_source(monkeypatch: Any) -> None:
    reads: list[int] = []

    def token_hex(size: int) -> str:
        reads.append(size)
        return os.urandom(size).hex()

    monkeypatch.setattr(errors.secrets, "token_hex", token_hex)
    errors._REQUEST_IDS.drop()
    ids = [new_request_id() for _ in range(512)]
    assert reads == [256 * 12, 256 * 12]
    assert len(set(ids)) == 512


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_draws_its_own_ids() -> None:
    new_request_id()  # a pool with unread ids, in the parent
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    assert ID.fullmatch(theirs)
    assert theirs != new_request_id()  # the parent's next id is not the child's
