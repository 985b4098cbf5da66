"""Time to live: which items expire when, and the entries that find them fast.

``ttl_changes`` keeps a ``ttl`` space of (expiry, item key) entries in step
with item writes, so a sweep reads only what has expired instead of the
whole table.  An entry's key is the expiry in whole epoch seconds (rounded
down) as 8 big-endian bytes followed by the item's stored key; its value is
empty.  Entries are kept while a table's TTL is ENABLING or ENABLED.

An item expires, as in DynamoDB, when its TTL attribute is a number (N)
smaller than the current epoch time and no more than five years in the past;
an item whose TTL attribute is missing or of another type never expires.

TTL states (``TableDefinition.ttl_status``)::

    DISABLED --UpdateTimeToLive(on)--> ENABLING --backfill done--> ENABLED
    ENABLED --UpdateTimeToLive(off)--> DISABLING --entries dropped--> DISABLED

Everything here is pure: the moving parts (backfill, drop, sweep) are in
``tablekeeper.engine.ttl_worker``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from tablekeeper.engine.indexes import Change
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import Item

TTL_SPACE: Final = "ttl"
# One entry, key CURSOR_KEY: the stored key of the last item the backfill indexed.
BACKFILL_SPACE: Final = "ttl-backfill"
CURSOR_KEY: Final = b"cursor"

ENABLING: Final = "ENABLING"
ENABLED: Final = "ENABLED"
DISABLING: Final = "DISABLING"
DISABLED: Final = "DISABLED"

EXPIRY_BYTES: Final = 8
_MAX_SECONDS: Final = 1 << (8 * EXPIRY_BYTES)
# "The TTL can't be more than five years in the past" (DynamoDB developer guide).
MAX_PAST_SECONDS: Final = 5 * 365 * 24 * 3600


def keeps_entries(table: TableDefinition) -> bool:
    """Whether writes to the table maintain its expiry entries."""
    return table.ttl_status in (ENABLING, ENABLED) and table.ttl_attribute is not None


def expiry_of(table: TableDefinition, item: Item | None) -> Decimal | None:
    """The item's TTL value when it is one DynamoDB would act on (a number), else None."""
    if item is None or not keeps_entries(table):
        return None
    value = item.get(table.ttl_attribute or "")
    # bool is not a Decimal, so BOOL attributes are ignored like every non-number.
    return value if isinstance(value, Decimal) else None


def entry_prefix(seconds: int) -> bytes:
    return seconds.to_bytes(EXPIRY_BYTES, "big")


def entry_key(table: TableDefinition, key: bytes, item: Item | None) -> bytes | None:
    """The expiry entry of an item, or None when it has none."""
    value = expiry_of(table, item)
    if value is None:
        return None
    seconds = math.floor(value)
    if not 0 <= seconds < _MAX_SECONDS:  # before 1970 or past any clock: never expires
        return None
    return entry_prefix(seconds) + key


def split_entry(entry: bytes) -> tuple[int, bytes]:
    """(expiry seconds, item key) of an entry key."""
    return int.from_bytes(entry[:EXPIRY_BYTES], "big"), entry[EXPIRY_BYTES:]


def ttl_changes(
    table: TableDefinition, key: bytes, old: Item | None, new: Item | None
) -> Iterable[Change]:
    """Expiry entries to delete and put when ``old`` becomes ``new``."""
    before = entry_key(table, key, old)
    after = entry_key(table, key, new)
    if before == after:
        return ()
    changes: list[Change] = []
    if before is not None:
        changes.append((TTL_SPACE, before, None, 0))
    if after is not None:
        changes.append((TTL_SPACE, after, b"", 0))
    return changes


def is_expired(value: Decimal, now: float) -> bool:
    """Whether a TTL value has expired at ``now``: past, but not more than five years past."""
    return now - MAX_PAST_SECONDS <= value < now


def sweep_bounds(now: float) -> tuple[bytes, bytes]:
    """The entry-key range [low, high) that may hold items expired at ``now``.

    It can also hold items that expire later within the current second (the
    key rounds down), so a sweep checks each item with :func:`is_expired`.
    """
    low = max(0, math.floor(now - MAX_PAST_SECONDS))
    high = min(_MAX_SECONDS - 1, math.ceil(now))
    return entry_prefix(low), entry_prefix(high)
