"""Index entries are measured by their DynamoDB size: held in a reference, or parsed from the copy."""

from __future__ import annotations

import orjson

from tablekeeper.engine.references import reference
from tablekeeper.engine.sizes import measure_entry
from tablekeeper.engine.storage.base import index_space
from tablekeeper.engine.values import decode_item, item_size

SPACE = index_space("byGk")
ENTRY = {"pk": {"S": "a"}, "n": {"N": "12.5"}, "b": {"B": "QUJD"}}


def test_a_reference_is_measured_by_the_size_it_holds() -> None:
    assert measure_entry(SPACE, reference(999, b"item-key")) == 999


def test_a_copy_is_measured_from_its_stored_form() -> None:
    blob = orjson.dumps(ENTRY)
    assert measure_entry(SPACE, blob) == item_size(decode_item(ENTRY))


def test_items_and_other_spaces_are_measured_by_length() -> None:
    assert measure_entry("items", b"12345") == 5


def test_item_size_counts_names_and_strings_in_utf8_bytes() -> None:
    item = {"naïve": "日本", "ascii": "abc", "m": {"ké": "é"}}
    # naïve 6 + 日本 6; ascii 5 + abc 3; m 1 + (3 + ké 3 + 1 + é 2)
    assert item_size(item) == 12 + 8 + 10
    assert measure_entry(SPACE, orjson.dumps({"naïve": {"S": "日本"}})) == 12
