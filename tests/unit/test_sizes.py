"""Index entries are measured by their DynamoDB size: held in a reference, remembered, or parsed."""

from __future__ import annotations

import orjson

from tablekeeper.engine.references import reference
from tablekeeper.engine.sizes import measure_entry, remember_size
from tablekeeper.engine.storage.base import index_space
from tablekeeper.engine.values import decode_item, item_size

SPACE = index_space("byGk")
ENTRY = {"pk": {"S": "a"}, "n": {"N": "12.5"}, "b": {"B": "QUJD"}}


def test_a_reference_is_measured_by_the_size_it_holds() -> None:
    assert measure_entry(SPACE, reference(999, b"item-key")) == 999


def test_a_copy_not_remembered_is_measured_from_its_stored_form() -> None:
    blob = orjson.dumps(ENTRY)
    assert measure_entry(SPACE, blob) == item_size(decode_item(ENTRY))


def test_a_remembered_copy_is_measured_by_the_size_noted_for_it() -> None:
    blob = remember_size(orjson.dumps(ENTRY), 999)
    assert measure_entry(SPACE, blob) == 999


def test_a_remembered_size_serves_only_that_entry_object_and_only_once() -> None:
    blob = remember_size(orjson.dumps(ENTRY), 999)
    equal_copy = bytes(bytearray(blob))
    real = item_size(decode_item(ENTRY))
    assert measure_entry(SPACE, equal_copy) == real
    assert measure_entry(SPACE, blob) == 999
    assert measure_entry(SPACE, blob) == real


def test_items_and_other_spaces_are_measured_by_length() -> None:
    assert measure_entry("items", b"12345") == 5


def test_item_size_counts_names_and_strings_in_utf8_bytes() -> None:
    item = {"naïve": "日本", "ascii": "abc", "m": {"ké": "é"}}
    # naïve 6 + 日本 6; ascii 5 + abc 3; m 1 + (3 + ké 3 + 1 + é 2)
    assert item_size(item) == 12 + 8 + 10
    assert measure_entry(SPACE, orjson.dumps({"naïve": {"S": "日本"}})) == 12
