"""Evaluating a validated condition against an item.

Validation already refused everything DynamoDB refuses, so evaluation never
raises: a comparison between values of different types, or with an absent
attribute, is simply false (``<>`` is the exception: absent is "not equal").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from tablekeeper.engine.values import MISSING, Value, _Missing, compare, type_of, values_equal

from .ast import (
    And,
    AttributeExists,
    AttributeNotExists,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Condition,
    Contains,
    In,
    Literal,
    Not,
    Operand,
    Or,
    Path,
)

Item = Mapping[str, Value]
_ORDERED: Final = frozenset({"S", "N", "B"})
_SETS: Final = frozenset({"SS", "NS", "BS"})


def resolve(path: Path, item: Item | None) -> Value | _Missing:
    """The value at a document path, or MISSING when any step is absent."""
    if item is None:
        return MISSING
    current: Any = item
    for element in path.elements:
        if isinstance(element, int):
            if not isinstance(current, list) or element >= len(current):
                return MISSING
        elif not isinstance(current, dict) or element not in current:
            return MISSING
        current = current[element]
    return current  # type: ignore[no-any-return]


def operand_value(operand: Operand, item: Item | None) -> Value | _Missing:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Path):
        return resolve(operand, item)
    return _size(operand_value(operand.operand, item))


def _size(value: Value | _Missing) -> Value | _Missing:
    """size(): characters of a string, bytes of a binary, members of a
    set, list or map; undefined (so every comparison is false) otherwise."""
    if isinstance(value, str | bytes | frozenset | list | dict):
        return Decimal(len(value))
    return MISSING


def _ordered(left: Value | _Missing, right: Value | _Missing) -> int | None:
    """Order two values when DynamoDB can (same type, S/N/B); else None."""
    if left is MISSING or right is MISSING:
        return None
    kind = type_of(left)  # type: ignore[arg-type]
    if kind not in _ORDERED or kind != type_of(right):  # type: ignore[arg-type]
        return None
    return compare(left, right)  # type: ignore[arg-type]


def _compare(node: Compare, item: Item | None) -> bool:
    left = operand_value(node.left, item)
    right = operand_value(node.right, item)
    if node.op == "=":
        return left is not MISSING and right is not MISSING and values_equal(left, right)
    if node.op == "<>":
        return left is MISSING or right is MISSING or not values_equal(left, right)
    order = _ordered(left, right)
    if order is None:
        return False
    if node.op == "<":
        return order < 0
    if node.op == "<=":
        return order <= 0
    if node.op == ">":
        return order > 0
    return order >= 0


def _between(node: Between, item: Item | None) -> bool:
    value = operand_value(node.value, item)
    low = _ordered(value, operand_value(node.low, item))
    high = _ordered(value, operand_value(node.high, item))
    return low is not None and high is not None and low >= 0 and high <= 0


def _in(node: In, item: Item | None) -> bool:
    value = operand_value(node.value, item)
    if value is MISSING:
        return False
    return any(values_equal(value, operand_value(option, item)) for option in node.options)


def _attribute_type(node: AttributeType, item: Item | None) -> bool:
    value = operand_value(node.value, item)
    wanted = operand_value(node.type_name, item)
    return value is not MISSING and type_of(value) == wanted  # type: ignore[arg-type]


def _begins_with(node: BeginsWith, item: Item | None) -> bool:
    value = operand_value(node.value, item)
    prefix = operand_value(node.prefix, item)
    if isinstance(value, str) and isinstance(prefix, str):
        return value.startswith(prefix)
    if isinstance(value, bytes) and isinstance(prefix, bytes):
        return value.startswith(prefix)
    return False


def _contains(node: Contains, item: Item | None) -> bool:
    """Substring of a string or binary, member of a set, element of a list."""
    container = operand_value(node.value, item)
    wanted = operand_value(node.operand, item)
    if container is MISSING or wanted is MISSING:
        return False
    if isinstance(container, str):
        return isinstance(wanted, str) and wanted in container
    if isinstance(container, bytes):
        return isinstance(wanted, bytes) and wanted in container
    if isinstance(container, frozenset):
        # A set's members share one type; a member of another type is no match.
        return type_of(container)[0] == type_of(wanted) and wanted in container  # type: ignore[arg-type]
    if isinstance(container, list):
        return any(values_equal(element, wanted) for element in container)
    return False


_EVALUATORS: Final[dict[type, Callable[[Any, Item | None], bool]]] = {
    Compare: _compare,
    Between: _between,
    In: _in,
    And: lambda node, item: evaluate(node.left, item) and evaluate(node.right, item),
    Or: lambda node, item: evaluate(node.left, item) or evaluate(node.right, item),
    Not: lambda node, item: not evaluate(node.operand, item),
    AttributeExists: lambda node, item: resolve(node.path, item) is not MISSING,
    AttributeNotExists: lambda node, item: resolve(node.path, item) is MISSING,
    AttributeType: _attribute_type,
    BeginsWith: _begins_with,
    Contains: _contains,
}


def evaluate(cond: Condition | None, item: Item | None) -> bool:
    """Whether ``item`` satisfies ``cond``.  ``item`` None is "no item" (every
    attribute absent); ``cond`` None (an empty legacy map) always holds."""
    if cond is None:
        return True
    return _EVALUATORS[type(cond)](cond, item)
