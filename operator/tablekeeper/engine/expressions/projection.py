"""Projecting an item onto a ProjectionExpression (or AttributesToGet).

Nested paths keep their structure, as DynamoDB returns them: ``a.b[1]``
yields ``{"a": {"b": [<element 1>]}}``.  Selected list elements are compacted
in index order, whatever order the expression named them in, and paths that
do not resolve are left out.
"""

from __future__ import annotations

from typing import Any

from tablekeeper.engine.values import MISSING, Item

from .ast import PathElement, Projection
from .evaluate import resolve


class _MapNode(dict[str, Any]):
    """A map rebuilt by the projection (as opposed to a map value copied whole)."""


class _ListNode(dict[int, Any]):
    """A list rebuilt by the projection: selected positions, compacted at the end."""


def project(proj: Projection, item: Item) -> Item:
    """The parts of ``item`` that ``proj`` names."""
    tree = _MapNode()
    for path in proj.paths:
        value = resolve(path, item)
        if value is not MISSING:
            _insert(tree, path.elements, value)
    return _finalize(tree)  # type: ignore[no-any-return]


def _insert(node: dict[Any, Any], elements: tuple[PathElement, ...], value: Any) -> None:
    head, rest = elements[0], elements[1:]
    if not rest:
        node[head] = value
        return
    child = node.get(head)
    if child is None:
        child = _ListNode() if isinstance(rest[0], int) else _MapNode()
        node[head] = child
    _insert(child, rest, value)


def _finalize(node: Any) -> Any:
    # Only nodes the projection built are rebuilt; selected values stay as they are.
    if isinstance(node, _ListNode):
        return [_finalize(node[index]) for index in sorted(node)]
    if isinstance(node, _MapNode):
        return {name: _finalize(child) for name, child in node.items()}
    return node
