"""Time to live: which items expire when, and the entries that find them fast.

``ttl_changes`` keeps a ``ttl`` space of (expiry, item key) entries in step
with item writes, so a sweep reads only what has expired instead of the
whole table.
"""

from __future__ import annotations

from collections.abc import Iterable

from tablekeeper.engine.indexes import Change
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import Item


def ttl_changes(
    table: TableDefinition, key: bytes, old: Item | None, new: Item | None
) -> Iterable[Change]:
    """Expiry entries to delete and put when ``old`` becomes ``new``."""
    return ()
