"""The entry an index that projects ALL keeps for an item: a reference, not a copy.

A copy of every item in every ALL index made the index as large as the table,
and each put wrote a random page of it twice over (to the WAL, then to the
database file); the copy bought nothing, since an entry and its item change in
the same transaction.  So an ALL entry's value names the item instead:

    0x00 | item size (3 bytes, big-endian) | item key length (2 bytes, big-endian)

The item's stored key is the entry key's last ``length`` bytes (an entry key is
the index key followed by the item key, see ``indexes``), and reads take the
item from the table in the same snapshot.  The size is DynamoDB's size of the
item, so that the index's counters (IndexSizeBytes) and an item collection's
size need no read of it.

KEYS_ONLY and INCLUDE entries stay copies of the projected item (small, and
read without a second lookup).  A value that does not start with 0x00 is such
a copy, or an ALL entry written before references; readers take either
(``indexes.entry_items``).
"""

from __future__ import annotations

from typing import Final

MARK: Final = b"\x00"
_LENGTH: Final = 6
# An item is at most 400 KB and a stored key a few KB: both fit with room to spare.
_MAX_SIZE: Final = (1 << 24) - 1
_MAX_KEY: Final = (1 << 16) - 1


def reference(size: int, item_key: bytes) -> bytes:
    """The value of an ALL entry for the item stored under ``item_key``, of DynamoDB size ``size``."""
    if size > _MAX_SIZE or len(item_key) > _MAX_KEY:
        raise ValueError(f"an index reference holds sizes below 16 MB and keys below 64 KB, "
                         f"not {size} and {len(item_key)}")
    return MARK + size.to_bytes(3, "big") + len(item_key).to_bytes(2, "big")


def is_reference(value: bytes) -> bool:
    return value[:1] == MARK


def referenced_size(value: bytes) -> int:
    return int.from_bytes(value[1:4], "big")


def referenced_key(entry_key: bytes, value: bytes) -> bytes:
    """The stored key of the item an entry refers to."""
    if len(value) != _LENGTH:
        raise ValueError(f"not an index reference: {value!r}")
    length = int.from_bytes(value[4:6], "big")
    if not 0 < length <= len(entry_key):
        raise ValueError(f"index reference to a {length}-byte key in a {len(entry_key)}-byte entry key")
    return entry_key[-length:]
