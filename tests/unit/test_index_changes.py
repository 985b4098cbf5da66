"""A write's index entries: what ``index_changes`` derives agrees with the reference functions.

``index_changes`` works from per-table plans and checks key types inline; for
any old and new item it must refuse exactly what ``check_index_keys`` refuses,
with the same error, and otherwise give the entries ``entry_key`` and
``project`` describe (an ALL index a reference to the item, rewritten only
when the item's size changes), each with the size storage would measure it by.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tablekeeper.engine.engine import dump_item
from tablekeeper.engine.errors import DynamoDBError
from tablekeeper.engine.indexes import backfill_changes, check_index_keys, entry_key, index_changes, project
from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.references import reference
from tablekeeper.engine.sizes import measure_entry
from tablekeeper.engine.storage.base import index_space
from tablekeeper.engine.tables import IndexDefinition, Projection, TableDefinition
from tablekeeper.engine.values import item_size, items_equal

TABLE = TableDefinition(
    name="orders", table_id="0" * 32,
    key_schema=KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "S")),
    attribute_definitions=(("pk", "S"), ("sk", "S"), ("city", "S"), ("total", "N"), ("blob", "B")),
    created=0.0,
    indexes=(
        IndexDefinition("by-city", KeySchema(KeyAttribute("city", "S"), KeyAttribute("total", "N")),
                        Projection("KEYS_ONLY"), local=False),
        IndexDefinition("by-blob", KeySchema(KeyAttribute("blob", "B")), Projection("ALL"),
                        local=False),
        IndexDefinition("by-total", KeySchema(KeyAttribute("pk", "S"), KeyAttribute("total", "N")),
                        Projection("INCLUDE", ("note",)), local=True),
        IndexDefinition("gone", KeySchema(KeyAttribute("city", "S")), Projection("ALL"),
                        local=False, status="DELETING"),
    ),
)
KEY = b"\x00stored-key"

_value = st.one_of(
    st.sampled_from(["", "x", "Oslo"]), st.sampled_from([b"", b"\x00", b"ab"]),
    st.sampled_from([Decimal(0), Decimal("1.5"), Decimal(-7)]), st.booleans(), st.none(),
)
_items = st.fixed_dictionaries(
    {"pk": st.just("p"), "sk": st.just("s")},
    optional={"city": _value, "total": _value, "blob": _value, "note": _value, "other": _value},
)


def _refusal(item: dict[str, Any]) -> Any:
    try:
        check_index_keys(TABLE, item)
    except DynamoDBError as error:
        return (type(error), error.body())
    return None


def _expected(
    old: dict[str, Any] | None, new: dict[str, Any]
) -> list[tuple[str, bytes, bytes | None, int]]:
    changes = []
    for index in TABLE.indexes:
        if index.status == "DELETING":
            continue
        space = index_space(index.name)
        old_key = None if old is None else entry_key(index, KEY, old)
        new_key = entry_key(index, KEY, new)
        everything = index.projection.type == "ALL"
        entry = reference(item_size(new), KEY) if everything else dump_item(project(index, TABLE, new))
        size = measure_entry(space, entry)
        if new_key is None:
            changes += [] if old_key is None else [(space, old_key, None, 0)]
        elif old_key == new_key:
            assert old is not None
            unchanged = (item_size(old) == item_size(new) if everything
                         else items_equal(project(index, TABLE, old), project(index, TABLE, new)))
            changes += [] if unchanged else [(space, new_key, entry, size)]
        else:
            changes += ([] if old_key is None else [(space, old_key, None, 0)]) + [
                (space, new_key, entry, size)]
    return changes


# Items in every index, so that each kind of entry is derived whatever hypothesis draws.
FULL = {"pk": "p", "sk": "s", "city": "Oslo", "total": Decimal(1), "blob": b"ab", "note": "n"}


@settings(max_examples=500, deadline=None)
@given(old=st.one_of(st.none(), _items), new=_items)
@example(old=None, new=FULL)
@example(old=FULL, new={**FULL, "note": "m"})
@example(old=FULL, new={**FULL, "note": "longer", "total": Decimal(2)})
@example(old=FULL, new={**FULL, "city": "Bergen", "other": "x"})
def test_index_changes_refuse_and_derive_what_the_reference_functions_do(
    old: dict[str, Any] | None, new: dict[str, Any]
) -> None:
    refusal = _refusal(new)
    try:
        changes = list(index_changes(TABLE, KEY, old, new))
    except DynamoDBError as error:
        assert (type(error), error.body()) == refusal
        return
    assert refusal is None
    assert changes == _expected(old, new)


@settings(max_examples=200, deadline=None)
@given(old=st.one_of(st.none(), _items), new=_items)
def test_a_write_whose_index_keys_were_checked_gets_the_same_entries(
    old: dict[str, Any] | None, new: dict[str, Any]
) -> None:
    if _refusal(new) is not None:
        return  # a checked write never reaches index_changes with such an item
    assert list(index_changes(TABLE, KEY, old, new, checked=True)) == list(
        index_changes(TABLE, KEY, old, new))


@settings(max_examples=200, deadline=None)
@given(item=_items)
def test_a_backfilled_entry_carries_the_size_storage_would_measure_it_by(item: dict[str, Any]) -> None:
    for index in TABLE.indexes:
        for space, _key, value, size in backfill_changes(TABLE, index, KEY, item):
            assert value is not None
            assert size == measure_entry(space, value)
