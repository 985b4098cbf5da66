"""Rendering an AST back to expression text: ``parse(to_text(ast)) == ast``.

Every name becomes a ``#nK`` placeholder and every value a ``:vK``
placeholder, so reserved words and odd characters never need care, and
parentheses are written only where precedence needs them (never doubled:
DynamoDB refuses redundant parentheses).  Used by the property tests, and
handy wherever an expression has to be shipped elsewhere (replication).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tablekeeper.engine.values import Value

from .ast import (
    AddAction,
    And,
    Arithmetic,
    AttributeExists,
    AttributeNotExists,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Contains,
    DeleteAction,
    IfNotExists,
    In,
    ListAppend,
    Literal,
    Node,
    Not,
    Or,
    Path,
    Projection,
    RemoveAction,
    SetAction,
    Size,
    UpdatePlan,
)


@dataclass
class Rendered:
    """Expression text plus the placeholders it needs."""

    text: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)


_CLAUSES = {SetAction: "SET", RemoveAction: "REMOVE", AddAction: "ADD", DeleteAction: "DELETE"}
_FUNCTIONS = {
    AttributeExists: "attribute_exists",
    AttributeNotExists: "attribute_not_exists",
    AttributeType: "attribute_type",
    BeginsWith: "begins_with",
    Contains: "contains",
    Size: "size",
    IfNotExists: "if_not_exists",
    ListAppend: "list_append",
}


class _Writer:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self._placeholders: dict[str, str] = {}
        self.values: dict[str, Value] = {}

    def name(self, name: str) -> str:
        if name not in self._placeholders:
            placeholder = f"#n{len(self._placeholders)}"
            self._placeholders[name] = placeholder
            self.names[placeholder] = name
        return self._placeholders[name]

    def value(self, literal: Literal) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = literal.value
        return placeholder

    def path(self, path: Path) -> str:
        text = ""
        for element in path.elements:
            if isinstance(element, int):
                text += f"[{element}]"
            else:
                text += ("." if text else "") + self.name(element)
        return text

    def node(self, node: Node) -> str:
        if isinstance(node, Path):
            return self.path(node)
        if isinstance(node, Literal):
            return self.value(node)
        if isinstance(node, Or):
            return f"{self.node(node.left)} OR {self.wrapped(node.right, (Or,))}"
        if isinstance(node, And):
            return f"{self.wrapped(node.left, (Or,))} AND {self.wrapped(node.right, (Or, And))}"
        if isinstance(node, Not):
            return f"NOT {self.wrapped(node.operand, (Or, And))}"
        if isinstance(node, Compare):
            return f"{self.node(node.left)} {node.op} {self.node(node.right)}"
        if isinstance(node, Between):
            return (
                f"{self.node(node.value)} BETWEEN {self.node(node.low)} AND {self.node(node.high)}"
            )
        if isinstance(node, In):
            options = ", ".join(self.node(option) for option in node.options)
            return f"{self.node(node.value)} IN ({options})"
        if isinstance(node, Arithmetic):
            return f"{self.node(node.left)} {node.op} {self.node(node.right)}"
        if type(node) in _FUNCTIONS:
            args = ", ".join(self.node(child) for child in node.children())
            return f"{_FUNCTIONS[type(node)]}({args})"
        if isinstance(node, UpdatePlan):
            return self.update(node)
        if isinstance(node, Projection):
            return ", ".join(self.path(path) for path in node.paths)
        raise TypeError(f"cannot render {node!r}")

    def wrapped(self, node: Node, loose: tuple[type, ...]) -> str:
        text = self.node(node)
        return f"({text})" if isinstance(node, loose) else text

    def update(self, plan: UpdatePlan) -> str:
        clauses: list[str] = []
        current: type | None = None
        for action in plan.actions:
            if isinstance(action, SetAction):
                text = f"{self.path(action.path)} = {self.node(action.value)}"
            elif isinstance(action, RemoveAction):
                text = self.path(action.path)
            else:
                text = f"{self.path(action.path)} {self.value(action.value)}"
            if type(action) is current:
                clauses[-1] += f", {text}"
            else:
                current = type(action)
                clauses.append(f"{_CLAUSES[current]} {text}")
        return " ".join(clauses)


def to_text(node: Node) -> Rendered:
    """Expression text (with its placeholder maps) that parses back to ``node``."""
    writer = _Writer()
    text = writer.node(node)
    return Rendered(text, writer.names, writer.values)
