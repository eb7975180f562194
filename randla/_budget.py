"""Byte budgets: how many rows (or columns) of a given size fit in a number of bytes.

Every blocked loop in randla sizes its blocks here, so the budgets have one meaning: the bytes
of the block that the loop holds at once (no randla imports).
"""
from __future__ import annotations

MiB = 2**20

#: Row panels of chunked and out-of-core matrices, and blocks of implicit (kernel) matrices.
PANEL_BYTES = 64 * MiB
#: Tiles of a sketch generated at once when it is applied densely.
SKETCH_TILE_BYTES = 32 * MiB


def rows_within(budget: int, row_bytes: int, *, minimum: int = 1, total: int | None = None) -> int:
    """The number of rows of ``row_bytes`` bytes that fit in ``budget`` bytes: at least
    ``minimum`` (a block always makes progress) and at most ``total`` (the rows there are)."""
    rows = max(minimum, int(budget) // max(1, int(row_bytes)))
    return rows if total is None else max(1, min(int(total), rows))
