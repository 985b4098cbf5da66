"""Chunks and packs: how a backup's items are cut, framed and packed.

**Chunks.**  A backup's items (stored key bytes, stored item bytes; keys
ascending) are cut into chunks of a few items.  A chunk ends after an item
when the chunk holds at least ``CHUNK_MIN`` bytes and either the item's key
is a boundary -- ``crc32(key) < size * 2**32 / CHUNK_SPAN``, so a boundary
falls about once every ``CHUNK_SPAN`` bytes, whatever the items' sizes -- or
the chunk reached ``CHUNK_MAX``.  Boundaries depend on the items themselves,
not on their positions: an insert, update or delete changes the chunk it
falls in (and at most the next one), never every later chunk, so an
unchanged stretch of the table makes the same chunks, with the same ids, in
every backup.  With ~200-byte items a chunk holds ~4 items (~900 bytes);
changing 1% of the items at random then dirties ~5% of the chunks (see
docs/backup-format.md for the arithmetic and the measurements).

A chunk's plaintext is::

    count (u32) | count x (key length u32, item length u32) | key0 item0 key1 item1 ...

and its id is ``crypto.content_id(plaintext, vault_key)`` (a keyed HMAC, so
ids reveal nothing about the data to anyone without the key), truncated to
``CHUNK_ID_BYTES``.

**Packs.**  New chunks are packed, in the order they were cut, into packs
of about ``PACK_TARGET`` bytes (so a 1M-item table is ~50 objects, not a
million).  A pack's plaintext is its chunks back to back, then their lengths
(u32 each) and their count (u32): a pack alone says where its chunks are,
and every chunk id can be recomputed from it, so the indexes could be
rebuilt from the packs.  The whole pack is sealed as one object (compression
sees a few MB of similar items).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator
from typing import Final

CHUNK_MIN: Final = 384
CHUNK_SPAN: Final = 640
CHUNK_MAX: Final = 64 * 1024
BOUNDARY_SCALE: Final = (1 << 32) // CHUNK_SPAN

PACK_TARGET: Final = 4 * 1024 * 1024

_U32 = struct.Struct("<I")
_BIG_ENDIAN: Final = sys.byteorder == "big"


def encode_chunk(parts: list[bytes]) -> bytes:
    """A chunk's plaintext from its keys and items, interleaved: key0, item0, key1, item1, ..."""
    return b"".join([u32_bytes(array("I", [len(parts) // 2, *map(len, parts)])), *parts])


class ChunkError(ValueError):
    """A chunk or pack whose framing does not add up."""


def chunk_lengths(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """The interleaved (key, item) lengths of the chunk at ``buf[start:end]``, its framing checked.

    Raises ``ChunkError`` when the chunk is empty or its lengths do not
    fill it exactly.
    """
    if end - start < 4:
        raise ChunkError("chunk shorter than its count")
    (count,) = _U32.unpack_from(buf, start)
    data = start + 4 + 8 * count
    if count == 0 or data > end:
        raise ChunkError(f"chunk of {end - start} bytes cannot hold {count} items")
    lengths = struct.unpack_from(f"<{2 * count}I", buf, start + 4)
    if data + sum(lengths) != end:
        raise ChunkError("chunk lengths do not add up to its size")
    return lengths


def chunk_items(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, bytes]]:
    """The (key, item) pairs of the chunk at ``buf[start:end]``; ``ChunkError`` if its framing is off."""
    lengths = chunk_lengths(buf, start, end)
    pos = start + 4 + 4 * len(lengths)
    for i in range(0, len(lengths), 2):
        key_end = pos + lengths[i]
        item_end = key_end + lengths[i + 1]
        yield buf[pos:key_end], buf[key_end:item_end]
        pos = item_end


def check_chunk(buf: bytes, start: int, end: int) -> tuple[int, int, int, bytes, bytes]:
    """Validate a chunk; returns (items, item bytes, key bytes, first key, last key).

    Raises ``ChunkError`` when its framing does not add up or its keys are
    not strictly ascending.
    """
    lengths = chunk_lengths(buf, start, end)
    pos = start + 4 + 4 * len(lengths)
    keys = []
    for i in range(0, len(lengths), 2):
        keys.append(buf[pos:pos + lengths[i]])
        pos += lengths[i] + lengths[i + 1]
    if any(keys[i] >= keys[i + 1] for i in range(len(keys) - 1)):
        raise ChunkError("keys inside a chunk are not ascending")
    return len(keys), sum(lengths[1::2]), sum(lengths[0::2]), keys[0], keys[-1]


class PackBuilder:
    """Collects new chunks for one pack; ``ordinal`` numbers them from 0."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.chunks: list[bytes] = []
        self.ids: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes, chunk_id: bytes) -> int:
        self.chunks.append(chunk)
        self.ids.append(chunk_id)
        self.size += len(chunk)
        return len(self.chunks) - 1

    def plaintext(self) -> bytes:
        lengths = array("I", [len(c) for c in self.chunks])
        return b"".join(self.chunks) + u32_bytes(lengths) + _U32.pack(len(self.chunks))


def pack_offsets(plaintext: bytes) -> list[int]:
    """Where each chunk of a pack starts, plus the end of the last: ``len`` is chunks + 1.

    Raises ``ChunkError`` when the trailer does not describe the pack.
    """
    if len(plaintext) < 4:
        raise ChunkError("pack shorter than its trailer")
    (count,) = _U32.unpack_from(plaintext, len(plaintext) - 4)
    table = len(plaintext) - 4 - 4 * count
    if table < 0:
        raise ChunkError(f"pack of {len(plaintext)} bytes cannot hold {count} chunks")
    lengths = u32_array(plaintext[table:len(plaintext) - 4])
    offsets = [0] * (count + 1)
    pos = 0
    for i, length in enumerate(lengths):
        pos += length
        offsets[i + 1] = pos
    if pos != table:
        raise ChunkError("pack chunk lengths do not add up to its size")
    return offsets


def u32_bytes(values: array) -> bytes:  # type: ignore[type-arg]
    """The little-endian bytes of an array('I')."""
    if _BIG_ENDIAN:
        values = array("I", values)
        values.byteswap()
    return values.tobytes()


def u32_array(data: bytes) -> array:  # type: ignore[type-arg]
    """An array('I') from little-endian bytes (whose length is a multiple of 4)."""
    values = array("I")
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values
