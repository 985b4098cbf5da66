"""Helpers shared by the engine's background work (index backfills, TTL).

Background jobs walk a table in bounded batches through ordinary storage
writes, so they interleave with client traffic instead of holding the
writer; these are the two moves every such job makes.
"""

from __future__ import annotations

import itertools

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.storage.base import ITEMS, Reader


def first_keys(
    reader: Reader, low: bytes | None, high: bytes | None, limit: int, *,
    space: str = ITEMS, low_inclusive: bool = True,
) -> list[bytes]:
    """Up to ``limit`` keys of a space from ``low`` (inclusive or not) below ``high``."""
    rows = reader.range(low, high, space=space, low_inclusive=low_inclusive)
    try:
        return [key for key, _ in itertools.islice(rows, limit)]
    finally:
        close = getattr(rows, "close", None)  # release the read transaction now
        if close is not None:
            close()


async def barrier(engine: Engine) -> None:
    """Wait until every storage write queued so far has committed."""
    await engine.storage.write(lambda _txn: None)
