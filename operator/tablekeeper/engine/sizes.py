"""DynamoDB's sizes of stored items, computed from their stored (wire JSON) form.

Reads that only need a size (Query and Scan pages, index counters) measure
the stored JSON directly instead of decoding it into values first; every
function here agrees with ``values.item_size`` of the decoded item.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from tablekeeper.engine.references import is_reference, referenced_size
from tablekeeper.engine.storage.base import index_space
from tablekeeper.engine.values import NUMBER_CONTEXT, number_size, text_size

INDEX_SPACE_PREFIX = index_space("")


def _binary_size(text: str) -> int:
    """Length of the bytes a base64 text encodes, without decoding it."""
    return len(text) * 3 // 4 - text.count("=", -2)


def _number_size(text: str) -> int:
    """``values.number_size`` of a stored number, from its canonical plain text."""
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    whole = whole.lstrip("0")
    if "e" in text or "E" in text:  # never stored so; keep the exact path anyway
        return number_size(Decimal(text).normalize(NUMBER_CONTEXT))
    if whole:
        adjusted = len(whole) - 1
        count = len((whole + fraction).rstrip("0"))
    else:
        significant = fraction.lstrip("0")
        if not significant:
            return 1  # zero
        adjusted = len(significant) - len(fraction) - 1
        count = len(significant.rstrip("0"))
    extra = count % 2 == 0 and adjusted % 2 == 0
    return 1 + (count + 1) // 2 + extra + negative


def _stored_value_size(wire: dict[str, Any]) -> int:
    """``values.value_size`` over the stored (wire) form, without building values."""
    ((tag, data),) = wire.items()
    if tag == "S":
        return text_size(data)
    if tag == "N":
        return _number_size(data)
    if tag == "B":
        return _binary_size(data)
    if tag == "M":
        size = 3
        for name, member in data.items():
            size += text_size(name) + 1 + _stored_value_size(member)
        return size
    if tag == "L":
        size = 3
        for member in data:
            size += 1 + _stored_value_size(member)
        return size
    if tag == "SS":
        return sum(map(text_size, data))
    if tag == "NS":
        return sum(map(_number_size, data))
    if tag == "BS":
        return sum(map(_binary_size, data))
    return 1  # BOOL, NULL


def stored_item_size(wire: dict[str, Any]) -> int:
    """DynamoDB's size of a stored item (``values.item_size`` of the item it encodes)."""
    size = 0
    for name, member in wire.items():
        size += text_size(name) + _stored_value_size(member)
    return size


def entry_size(value: bytes) -> int:
    """An index entry's DynamoDB size: held by a reference (``references``), else its copy's."""
    if is_reference(value):
        return referenced_size(value)
    return stored_item_size(orjson.loads(value))


def measure_entry(space: str, value: bytes) -> int:
    """The storage Measure of the engine: an index entry's DynamoDB size, else its length.

    Writes hand storage the size of an entry they just built (``WriteTxn.put``'s
    ``measured``), so this parses copies only where storage reads old values back.
    """
    if not space.startswith(INDEX_SPACE_PREFIX):
        return len(value)
    return entry_size(value)
