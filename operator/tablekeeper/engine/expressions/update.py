"""Applying a validated UpdatePlan to an item.

DynamoDB's semantics, which shape the three phases below:

* every operand is read from the item *as it was* before the update
  ("SET a = b, b = a" swaps), so all values are computed first;
* list indexes always mean positions in the original list: writes go first,
  in path order (so several appends past the end land sorted by index), and
  removals last, deepest-last-index first, so no removal shifts a position
  another action still has to find;
* nothing is written until every action has been computed, so a runtime
  type error leaves the input untouched (it is never mutated anyway: the
  result shares unchanged subtrees with it and copies only written paths).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.values import (
    MISSING,
    NUMBER_CONTEXT,
    Item,
    Value,
    _Missing,
    check_number,
    type_of,
)

from .ast import (
    AddAction,
    Arithmetic,
    DeleteAction,
    IfNotExists,
    ListAppend,
    Literal,
    Path,
    RemoveAction,
    SetAction,
    SetValue,
    UpdatePlan,
)
from .evaluate import resolve

INVALID_PATH: Final = "The document path provided in the update expression is invalid for update"
MISSING_OPERAND: Final = (
    "The provided expression refers to an attribute that does not exist in the item"
)
WRONG_OPERAND_TYPE: Final = "An operand in the update expression has an incorrect data type"
LEGACY_TYPE_MISMATCH: Final = "Type mismatch for attribute to update"

_SET_TYPES: Final = frozenset({"SS", "NS", "BS"})


def apply_update(plan: UpdatePlan, item: Item, *, exists: bool = True) -> Item:
    """The item after ``plan``; ``item`` itself is not modified.

    ``item`` is the stored item, or just its key when there is none; pass
    ``exists=False`` then, because DynamoDB ignores a nested REMOVE on an
    item that does not exist where it refuses it on one that does.
    Raises ValidationException with DynamoDB's wording on runtime errors.
    """
    writes: list[tuple[Path, Value]] = []
    removals: list[Path] = []
    for action in plan.actions:
        if isinstance(action, RemoveAction):
            if _removable(action.path, item, exists):
                removals.append(action.path)
            continue
        _check_parent(action.path, item)
        current = resolve(action.path, item)
        if isinstance(action, SetAction):
            writes.append((action.path, _compute(action.value, item)))
        elif isinstance(action, AddAction):
            writes.append((action.path, _add(current, action.value.value, action.legacy)))
        else:
            result = _delete(current, action)
            if result is MISSING:
                if current is not MISSING:
                    removals.append(action.path)  # the set became empty
            else:
                writes.append((action.path, result))  # type: ignore[arg-type]

    updated: dict[str, Any] = dict(item)
    copied: set[int] = {id(updated)}
    for path, value in sorted(writes, key=lambda write: _order(write[0])):
        parent = _writable_parent(updated, path, copied)
        last = path.elements[-1]
        if isinstance(last, int) and last >= len(parent):
            parent.append(value)  # SET past the end of a list appends
        else:
            parent[last] = value
    for path in sorted(removals, key=_order, reverse=True):
        parent = _writable_parent(updated, path, copied)
        last = path.elements[-1]
        if isinstance(last, int):
            if last < len(parent):
                del parent[last]
        else:
            parent.pop(last, None)
    return updated


def _order(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key: document order, list positions numerically."""
    return tuple((0, e) if isinstance(e, int) else (1, e) for e in path.elements)


def _check_parent(path: Path, item: Item) -> None:
    """A nested target needs its container to exist with the right type."""
    if len(path.elements) == 1:
        return
    parent = resolve(Path(path.elements[:-1]), item)
    last = path.elements[-1]
    if isinstance(last, int) and not isinstance(parent, list):
        raise ValidationException(INVALID_PATH)
    if isinstance(last, str) and not isinstance(parent, dict):
        raise ValidationException(INVALID_PATH)


def _removable(path: Path, item: Item, exists: bool) -> bool:
    """Whether REMOVE has something to remove (absent leaves are fine)."""
    if len(path.elements) > 1:
        if not exists:
            return False
        _check_parent(path, item)
    return resolve(path, item) is not MISSING


def _writable_parent(root: dict[str, Any], path: Path, copied: set[int]) -> Any:
    """The container holding the path's last element, copied on first write."""
    container: Any = root
    for element in path.elements[:-1]:
        child = container[element]
        if id(child) not in copied:
            child = child.copy()
            container[element] = child
            copied.add(id(child))
        container = child
    return container


def _compute(value: SetValue, item: Item) -> Value:
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, Path):
        found = resolve(value, item)
        if found is MISSING:
            raise ValidationException(MISSING_OPERAND)
        return found  # type: ignore[return-value]
    if isinstance(value, IfNotExists):
        found = resolve(value.path, item)
        return _compute(value.default, item) if found is MISSING else found  # type: ignore[return-value]
    if isinstance(value, ListAppend):
        left, right = _compute(value.left, item), _compute(value.right, item)
        if not isinstance(left, list) or not isinstance(right, list):
            raise ValidationException(WRONG_OPERAND_TYPE)
        return left + right
    assert isinstance(value, Arithmetic)
    left, right = _compute(value.left, item), _compute(value.right, item)
    if not _is_number(left) or not _is_number(right):
        raise ValidationException(WRONG_OPERAND_TYPE)
    assert isinstance(left, Decimal) and isinstance(right, Decimal)
    total = (
        NUMBER_CONTEXT.add(left, right) if value.op == "+" else NUMBER_CONTEXT.subtract(left, right)
    )
    return check_number(total)


def _is_number(value: Value) -> bool:
    return isinstance(value, Decimal) and not isinstance(value, bool)


def _add(current: Value | _Missing, value: Value, legacy: bool) -> Value:
    """ADD: create, sum numbers, union sets (and, for AttributeUpdates, append lists)."""
    if current is MISSING:
        return value
    error = LEGACY_TYPE_MISMATCH if legacy else WRONG_OPERAND_TYPE
    kind = type_of(current)  # type: ignore[arg-type]
    if kind != type_of(value):
        raise ValidationException(error)
    if kind == "N":
        return check_number(NUMBER_CONTEXT.add(current, value))  # type: ignore[arg-type]
    if kind in _SET_TYPES:
        return current | value  # type: ignore[operator]
    if kind == "L" and legacy:
        return current + value  # type: ignore[operator]
    raise ValidationException(error)


def _delete(current: Value | _Missing, action: DeleteAction) -> Value | _Missing:
    """DELETE: set difference; MISSING when nothing is left (or was there)."""
    if current is MISSING:
        return MISSING
    value = action.value.value
    kind = type_of(current)  # type: ignore[arg-type]
    if kind not in _SET_TYPES or kind != type_of(value):
        raise ValidationException(LEGACY_TYPE_MISMATCH if action.legacy else WRONG_OPERAND_TYPE)
    remaining = current - value  # type: ignore[operator]
    return remaining if remaining else MISSING
