"""Secondary index entries derived from an item write.

``index_changes`` says which entries of which index spaces a write must
delete and put, so that indexes change in the same storage transaction as the
item (DESIGN.md: index entries in their own tables, same transaction).
"""

from __future__ import annotations

from collections.abc import Iterable

from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import Item

# (space, entry key, entry value or None to delete)
Change = tuple[str, bytes, bytes | None]


def index_changes(
    table: TableDefinition, key: bytes, old: Item | None, new: Item | None
) -> Iterable[Change]:
    """Index entries to delete and put when ``old`` becomes ``new``."""
    return ()
