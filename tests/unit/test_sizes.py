"""Index entries are measured by their DynamoDB size: held in a reference, or parsed from a copy."""

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


def test_a_copy_written_before_references_is_measured_from_its_stored_form() -> None:
    blob = orjson.dumps(ENTRY)
    assert measure_entry(SPACE, blob) == item_size(decode_item(ENTRY))


def test_items_and_other_spaces_are_measured_by_length() -> None:
    assert measure_entry("items", b"12345") == 5
