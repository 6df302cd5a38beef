"""Reading callgrind's dumps: the totals, and the instructions of glibc's block copies."""

from __future__ import annotations

from pathlib import Path

from bench.measure.callgrind import block_moves, events

LISTING = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
221,600,807 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
52,392,754 (23.64%)  Python/ceval.c:_PyEval_EvalFrameDefault'2 [libpython3.11.so.1.0]
24,306,694 (10.97%)  ./string/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [libc.so.6]
 1,881,122 ( 0.85%)  ./string/memcmp-avx2-movbe.S:__memcmp_avx2_movbe [libc.so.6]
 1,420,972 ( 0.64%)  ./string/memset-vec-unaligned-erms.S:__memset_avx2_unaligned_erms [libc.so.6]
   300,000 ( 0.14%)  ???:__memmove_evex_unaligned_erms [libc.so.6]
"""


def test_block_moves_sums_the_erms_copies_and_fills_only() -> None:
    assert block_moves(LISTING) == 24_306_694 + 1_420_972 + 300_000


def test_events_names_each_total(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out"
    dump.write_text("version: 1\nevents: Ir Dr Dw\nfn=(1) f\n0 3 2 1\nsummary: 30 20 10\n")
    assert events(dump) == {"Ir": 30, "Dr": 20, "Dw": 10}
