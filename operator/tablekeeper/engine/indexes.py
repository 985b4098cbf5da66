"""Secondary index entries derived from an item write.

``index_changes`` says which entries of which index spaces a write must
delete and put, so that indexes change in the same storage transaction as the
item (DESIGN.md: index entries in their own tables, same transaction).

An item has one entry in an index when it carries every key attribute of the
index with the type the index declares (indexes are sparse: an item without
them is simply not in the index).  The entry is stored

* under ``index key + item key``: the index's own key encoding
  (``keys.KeySchema``: partition prefix, then sort key) followed by the
  item's stored key, so that the entries of one index partition sort by the
  index sort key, and entries of items sharing an index key stay distinct;
* for KEYS_ONLY and INCLUDE, as the projected item, serialized as items are
  (``engine.dump_item``), so that reads splice it unchanged: the index and
  table keys, plus the listed attributes for INCLUDE;
* for ALL, as a reference to the item (``references``: its size and the
  length of its key), which reads resolve in the same snapshot.

Writes keep ACTIVE, UPDATING and CREATING indexes (a CREATING index is being
backfilled: ``index_builds``); a DELETING index is no longer kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import orjson

from tablekeeper.engine.capacity import write_units
from tablekeeper.engine.engine import dump_item
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.keys import MAX_HASH_KEY_BYTES, MAX_RANGE_KEY_BYTES
from tablekeeper.engine.references import is_reference, reference, referenced_key
from tablekeeper.engine.sizes import entry_size, stored_item_size
from tablekeeper.engine.storage.base import Reader, StorageError, index_space
from tablekeeper.engine.tables import IndexDefinition, TableDefinition
from tablekeeper.engine.values import Item, encode_item, item_size, items_equal, type_of, value_size

# (space, entry key, entry value or None to delete, the value's measure: ``sizes.measure_entry``)
Change = tuple[str, bytes, bytes | None, int]

MAINTAINED: Final = frozenset({"ACTIVE", "UPDATING", "CREATING"})
GB: Final = 1 << 30


def maintained(table: TableDefinition) -> Iterable[IndexDefinition]:
    """The indexes a write to the table keeps."""
    return (index for index in table.indexes if index.status in MAINTAINED)


# The engine's value type of each key attribute type: a key value has exactly it (a bool is no N).
_KEY_TYPES: Final = {"S": str, "N": Decimal, "B": bytes}
_ABSENT: Final = object()


def index_key(index: IndexDefinition, item: Item) -> bytes | None:
    """The index's key encoding for the item, or None when the item is not in the index."""
    schema = index.key_schema
    attr = schema.hash
    if type(item.get(attr.name, _ABSENT)) is not _KEY_TYPES[attr.type]:
        return None
    attr = schema.range
    if attr is not None and type(item.get(attr.name, _ABSENT)) is not _KEY_TYPES[attr.type]:
        return None
    return schema.encode(item)


def entry_key(index: IndexDefinition, key: bytes, item: Item) -> bytes | None:
    """The stored key of the item's entry (``key`` is the item's stored key)."""
    found = index_key(index, item)
    return None if found is None else found + key


def projected_names(index: IndexDefinition, table: TableDefinition) -> frozenset[str] | None:
    """The attributes an entry holds; None for ALL (every attribute)."""
    if index.projection.type == "ALL":
        return None
    return frozenset(
        (*index.key_schema.names, *table.key_schema.names, *index.projection.non_key_attributes)
    )


def project(index: IndexDefinition, table: TableDefinition, item: Item) -> Item:
    """The item as the index holds it."""
    return _projected(item, projected_names(index, table))


def _projected(item: Item, names: frozenset[str] | None) -> Item:
    return item if names is None else {name: value for name, value in item.items() if name in names}


@dataclass(frozen=True, slots=True)
class _Kept:
    """What a write needs of one index it keeps, worked out once per table definition."""

    index: IndexDefinition
    space: str
    names: frozenset[str] | None  # projected attributes; None for ALL


_kept: dict[int, tuple[TableDefinition, tuple[_Kept, ...]]] = {}


def _kept_indexes(table: TableDefinition) -> tuple[_Kept, ...]:
    # Keyed by identity (a definition is replaced whole on every change) and
    # checked against it, since an id can be reused once a definition is gone.
    found = _kept.get(id(table))
    if found is not None and found[0] is table:
        return found[1]
    kept = tuple(
        _Kept(index, index_space(index.name), projected_names(index, table)) for index in maintained(table)
    )
    if len(_kept) >= 1024:
        _kept.clear()
    _kept[id(table)] = (table, kept)
    return kept


def _changes_of(
    kept: _Kept, key: bytes, old: Item | None, new: Item | None, check: bool,
    old_size: int | None, new_size: int | None,
) -> list[Change]:
    space, index, names = kept.space, kept.index, kept.names
    if new is not None and check:
        check_index_keys_of(index, new)
    old_key = None if old is None else entry_key(index, key, old)
    new_key = None if new is None else entry_key(index, key, new)
    if new_key is None:
        return [] if old_key is None else [(space, old_key, None, 0)]
    assert new is not None
    if names is None:  # ALL: a reference, which changes only with the item's size
        size = item_size(new) if new_size is None else new_size
        if old_key == new_key:
            assert old is not None
            if (item_size(old) if old_size is None else old_size) == size:
                return []  # reads take the item as it is now
        value = reference(size, key)
    else:
        entry = _projected(new, names)
        if old_key == new_key:
            assert old is not None
            if items_equal(_projected(old, names), entry):
                return []  # nothing the index holds changed
        value, size = dump_item(entry), item_size(entry)
    changes: list[Change] = [] if old_key is None or old_key == new_key else [(space, old_key, None, 0)]
    changes.append((space, new_key, value, size))
    return changes


def index_changes(
    table: TableDefinition, key: bytes, old: Item | None, new: Item | None, *,
    checked: bool = False, old_size: int | None = None, new_size: int | None = None,
) -> Iterable[Change]:
    """Index entries to delete and put when ``old`` becomes ``new``.

    ``old_size`` and ``new_size`` are the items' sizes, when the writer has them at hand.
    Raises DynamoDB's ValidationException when ``new`` has an index key
    attribute of the wrong type or an empty one (``check_index_keys``): the
    write fails whole. ``checked`` says the caller has checked that already.
    """
    if not table.indexes:
        return ()
    changes: list[Change] = []
    for kept in _kept_indexes(table):
        changes.extend(_changes_of(kept, key, old, new, not checked, old_size, new_size))
    return changes


def backfill_changes(
    table: TableDefinition, index: IndexDefinition, key: bytes, item: Item
) -> Iterable[Change]:
    """The entry an existing item gets in a new index (none when it is not in it).

    An item whose index key attribute a write would be refused for (another
    type, empty, too large: ``check_index_keys_of``) is an index key violation:
    as in DynamoDB, it stays in the table and the index leaves it out.
    """
    found = entry_key(index, key, item)
    if found is None:
        return ()
    try:
        check_index_keys_of(index, item)
    except ValidationException:
        return ()
    space = index_space(index.name)
    if index.projection.type == "ALL":
        size = item_size(item)
        return ((space, found, reference(size, key), size),)
    entry = project(index, table, item)
    return ((space, found, dump_item(entry), item_size(entry)),)


def entry_items(
    reader: Reader, table: TableDefinition, index: IndexDefinition, rows: Iterable[tuple[bytes, bytes]]
) -> Iterable[tuple[bytes, bytes]]:
    """An index read's rows as (entry key, what the index holds of the item now).

    A KEYS_ONLY or INCLUDE entry is the projected item itself: the rows pass
    as they are.  An ALL entry is a reference: it becomes the item, read from
    the table in the reader's snapshot a few entries at a time (first 8,
    doubling up to 256: a short page reads little ahead).  An ALL
    entry written before references (a copy of the item) is resolved as well,
    through the table key it holds, so that a copy never stands in for an item
    it may no longer match.
    """
    if index.projection.type != "ALL":
        return rows
    return _referenced_items(reader, table, index, rows)


def _referenced_items(
    reader: Reader, table: TableDefinition, index: IndexDefinition, rows: Iterable[tuple[bytes, bytes]]
) -> Iterator[tuple[bytes, bytes]]:
    remaining = iter(rows)
    ahead = 8
    while chunk := list(itertools.islice(remaining, ahead)):
        try:
            keys = [_item_key(table, key, value) for key, value in chunk]
        except (ValueError, KeyError) as exc:  # neither a reference nor a copy: damaged
            raise StorageError(f"read index {index.name} of table {table.name}: {exc!r}") from None
        items = reader.get_many(keys)
        for (key, _), item_key in zip(chunk, keys, strict=True):
            blob = items.get(item_key)
            if blob is None:  # an entry and its item change together: the store is damaged
                raise StorageError(
                    f"read index {index.name} of table {table.name}: an entry without its item")
            yield key, blob
        ahead = min(2 * ahead, 256)


def _item_key(table: TableDefinition, key: bytes, value: bytes) -> bytes:
    if is_reference(value):
        return referenced_key(key, value)
    return table.key_schema.encode_stored(orjson.loads(value))


def check_index_keys(table: TableDefinition, item: Item) -> None:
    """Refuse an item whose index key attributes are of the wrong type, empty or too large
    (2048 bytes for an index's partition key, 1024 for its sort key, as for a table's).

    An item without an index's key attributes is fine (sparse indexes); one
    that has them must give them the type the index declares.
    """
    for index in maintained(table):
        check_index_keys_of(index, item)


def check_index_keys_of(index: IndexDefinition, item: Item) -> None:
    """``check_index_keys`` for one index."""
    schema = index.key_schema
    for attr in (schema.hash, schema.range):
        if attr is None:
            continue
        value = item.get(attr.name, _ABSENT)
        if value is _ABSENT:
            continue
        if type(value) is not _KEY_TYPES[attr.type]:
            actual = type_of(value)
            raise ValidationException(
                "One or more parameter values were invalid: Type mismatch for Index Key "
                f"{attr.name} Expected: {attr.type} Actual: {actual} IndexName: {index.name}"
            )
        if isinstance(value, str | bytes):
            if not value:
                kind = "string" if isinstance(value, str) else "binary"
                raise ValidationException(
                    "One or more parameter values are not valid. A value specified for a "
                    "secondary index key is not supported. The AttributeValue for a key "
                    f"attribute cannot contain an empty {kind} value. IndexName: {index.name}, "
                    f"IndexKey: {attr.name}"
                )
            size = value_size(value)
            limit = MAX_HASH_KEY_BYTES if attr is schema.hash else MAX_RANGE_KEY_BYTES
            if size > limit:
                raise ValidationException(
                    "One or more parameter values were invalid: Size limit exceeded for Index Key "
                    f"{attr.name} Actual Size: {size} bytes Max Size: {limit} bytes IndexName: {index.name}"
                )


# --- item collections (tables with local secondary indexes) ------------------------------------


def has_item_collections(table: TableDefinition) -> bool:
    return any(index.local for index in table.indexes)


def _prefix_end(prefix: bytes) -> bytes | None:
    stripped = prefix.rstrip(b"\xff")
    return None if not stripped else stripped[:-1] + bytes([stripped[-1] + 1])


def collection_size(reader: Reader, table: TableDefinition, item_key: Item) -> int:
    """The size of an item collection: its items and their local index entries.

    Local indexes share the table's partition key, so the collection is one
    key range in the items and in each local index space.
    """
    prefix = table.key_schema.partition_prefix(item_key[table.key_schema.hash.name])
    end = _prefix_end(prefix)
    size = sum(stored_item_size(orjson.loads(blob)) for _key, blob in reader.range(prefix, end))
    for space in (index_space(index.name) for index in table.indexes if index.local):
        size += sum(entry_size(blob) for _key, blob in reader.range(prefix, end, space=space))
    return size


def item_collection_metrics(reader: Reader, table: TableDefinition, item_key: Item) -> dict[str, Any]:
    """ItemCollectionMetrics for a write to the collection of ``item_key``."""
    hash_name = table.key_schema.hash.name
    gigabytes = collection_size(reader, table, item_key) / GB
    low = float(math.floor(gigabytes))
    return {
        "ItemCollectionKey": encode_item({hash_name: item_key[hash_name]}),
        "SizeEstimateRangeGB": [low, low + 1.0],
    }


# --- capacity ---------------------------------------------------------------------------------


def index_write_units(
    table: TableDefinition, old: Item | None, new: Item | None
) -> dict[str, tuple[bool, float]]:
    """Write units a write costs each index: (local, units) by index name.

    As DynamoDB charges them: putting or deleting an entry costs its size in
    write units; moving an item to another index key costs both; rewriting
    an entry in place costs the larger of its two sizes, and nothing when
    what the index holds did not change.
    """
    units: dict[str, tuple[bool, float]] = {}
    for index in maintained(table):
        old_key = None if old is None else index_key(index, old)
        new_key = None if new is None else index_key(index, new)
        old_size = 0 if old_key is None else item_size(project(index, table, old or {}))
        new_size = 0 if new_key is None else item_size(project(index, table, new or {}))
        if old_key is None and new_key is None:
            continue
        if old_key == new_key:
            assert old is not None and new is not None
            if index.projection.type != "ALL" and items_equal(
                project(index, table, old), project(index, table, new)
            ):
                continue
            cost = write_units(old_size, new_size)
        else:
            cost = sum(write_units(size) for size in (old_size, new_size) if size)
        units[index.name] = (index.local, cost)
    return units
