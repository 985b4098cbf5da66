"""What a Query or Scan reads: the table's items or one secondary index's entries.

A ``Target`` says which space the read ranges over and with which key; for
an index it also says what DynamoDB's rules for index reads add:

* the index must exist and be readable: a global index refuses ConsistentRead
  and, while it backfills, every read;
* an index entry's stored key is the index key followed by the item's stored
  key (``engine.indexes``), so an ExclusiveStartKey names both the index's
  and the table's key attributes, and so does every LastEvaluatedKey;
* Select ALL_ATTRIBUTES on a global index that does not project ALL is
  refused; a local index instead reads the table item behind each entry
  (a *fetch*) whenever the request wants attributes the index does not hold.

Start keys are checked in DynamoDB's order, which its wording betrays: the
index's key attributes first ("The provided starting key is invalid" when
one is missing or the count is off, the bare "does not match the schema" for
a wrong type), then the Select rule, then the table's key attributes (the
same messages prefixed "The provided starting key is invalid: ").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.indexes import projected_names
from tablekeeper.engine.keys import KeySchema
from tablekeeper.engine.storage.base import ITEMS, index_space
from tablekeeper.engine.tables import IndexDefinition, TableDefinition
from tablekeeper.engine.values import Item, type_of

if TYPE_CHECKING:
    from tablekeeper.engine.operations.query import ReadSpec

START_KEY_INVALID: Final = "The provided starting key is invalid"
KEY_MISMATCH: Final = "The provided key element does not match the schema"


@dataclass(frozen=True)
class Target:
    """The space a read ranges over, and how its keys are made."""

    table: TableDefinition
    index: IndexDefinition | None = None
    fetch: bool = False  # a local index reads the table item behind each entry

    @property
    def schema(self) -> KeySchema:
        """The key the read's ranges are over: the index's for an index."""
        return self.table.key_schema if self.index is None else self.index.key_schema

    @property
    def space(self) -> str:
        return ITEMS if self.index is None else index_space(self.index.name)

    @property
    def suffixed(self) -> bool:
        """Whether stored keys continue past the schema's key (with the item's key)."""
        return self.index is not None

    @property
    def key_names(self) -> tuple[str, ...]:
        """The attributes of an ExclusiveStartKey or LastEvaluatedKey."""
        names = self.schema.names
        return names + tuple(n for n in self.table.key_schema.names if n not in names)

    def encode(self, key: Item) -> bytes:
        """The stored key a full start key points at."""
        if self.index is None:
            return self.table.key_schema.encode(key)
        return self.index.key_schema.encode(key) + self.table.key_schema.encode(key)

    def item_suffix(self, key: Item) -> bytes:
        """What follows the schema's key in a stored key (empty for the table)."""
        return self.table.key_schema.encode(key) if self.suffixed else b""


def index_target(table: TableDefinition, spec: ReadSpec, scan: bool) -> Target:
    """The index a request names, if it may be read so."""
    assert spec.index_name is not None
    index = table.index(spec.index_name)
    if index is None or index.status == "DELETING":
        if scan and spec.start_key is not None:
            raise ValidationException(START_KEY_INVALID)
        raise ValidationException(f"The table does not have the specified index: {spec.index_name}")
    if not index.local and spec.consistent:
        raise ValidationException("Consistent reads are not supported on global secondary indexes")
    if index.status == "CREATING":
        raise ValidationException(
            f"Cannot read from backfilling global secondary index: {index.name}"
        )
    return Target(table, index, fetch=_needs_fetch(table, index, spec))


def _needs_fetch(table: TableDefinition, index: IndexDefinition, spec: ReadSpec) -> bool:
    """Whether a local index read wants attributes its entries do not hold."""
    names = projected_names(index, table)
    if not index.local or names is None:
        return False
    if spec.select == "ALL_ATTRIBUTES":
        return True
    wanted: set[str] = set()
    if spec.projection is not None:
        wanted.update(path.top for path in spec.projection.paths)
    if spec.filter is not None:
        wanted.update(spec.filter.top_level_names())
    return not wanted <= names


def check_select(target: Target, spec: ReadSpec) -> None:
    index = target.index
    if index is None or index.local or index.projection.type == "ALL":
        return
    if spec.select == "ALL_ATTRIBUTES":
        raise ValidationException(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not "
            f"supported for global secondary index {index.name} because its projection type "
            "is not ALL"
        )


def check_partition_key_type(target: Target, start: Item) -> None:
    """Query, before the key condition: the index partition key's type, if given."""
    attr = target.schema.hash
    if attr.name in start and type_of(start[attr.name]) != attr.type:
        raise ValidationException(KEY_MISMATCH)


def check_index_start_key(target: Target, spec: ReadSpec, start: Item) -> None:
    """An ExclusiveStartKey for an index read, then the Select rule (see the module docstring)."""
    if len(start) != len(target.key_names):
        raise ValidationException(START_KEY_INVALID)
    schema = target.schema
    for attr in (schema.hash, schema.range):
        if attr is None:
            continue
        if attr.name not in start:
            raise ValidationException(START_KEY_INVALID)
        if type_of(start[attr.name]) != attr.type:
            raise ValidationException(KEY_MISMATCH)
    check_select(target, spec)
    table_schema = target.table.key_schema
    table_part = {name: start[name] for name in table_schema.names if name in start}
    try:
        table_schema.validate_key(table_part)
        schema.validate_key({name: start[name] for name in schema.names})
    except ValidationException as exc:
        raise ValidationException(f"{START_KEY_INVALID}: {exc.message}") from None
