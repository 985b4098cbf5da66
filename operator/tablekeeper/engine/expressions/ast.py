"""The one AST for all five expression kinds and the legacy parameters.

Nodes are frozen dataclasses.  Placeholders are already resolved: a
``Path`` holds real attribute names, a ``Literal`` the decoded value.  So the
same tree comes out of ``#n = :v`` and out of the legacy ``Expected`` map, and
everything downstream (evaluation, update, projection) has one input shape.

Paths are rendered in messages the way DynamoDB renders them:
``[a, b, [3]]`` for ``a.b[3]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from tablekeeper.engine.values import Value, type_of, values_equal

PathElement = str | int

COMPARATORS: Final = ("=", "<>", "<", "<=", ">", ">=")


class Node:
    """Base of every AST node: a tree walk and the names it touches."""

    __slots__ = ()

    def children(self) -> tuple[Node, ...]:
        return ()

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children():
            yield from child.walk()

    def top_level_names(self) -> set[str]:
        """Top-level attribute names referenced anywhere below this node."""
        return {node.top for node in self.walk() if isinstance(node, Path)}


# --- operands -------------------------------------------------------------------


@dataclass(frozen=True)
class Path(Node):
    """A document path: ``a.b[2].c`` is ``("a", "b", 2, "c")``."""

    elements: tuple[PathElement, ...]

    @property
    def top(self) -> str:
        head = self.elements[0]
        assert isinstance(head, str)
        return head

    def __str__(self) -> str:
        shown = (f"[{e}]" if isinstance(e, int) else e for e in self.elements)
        return "[" + ", ".join(shown) + "]"


@dataclass(frozen=True, eq=False)
class Literal(Node):
    """A value from ExpressionAttributeValues (or a legacy AttributeValue)."""

    value: Value

    # DynamoDB equality, not Python's: True must not equal Decimal(1).
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Literal) and values_equal(self.value, other.value)

    def __hash__(self) -> int:
        return hash(type_of(self.value))


@dataclass(frozen=True)
class Size(Node):
    """``size(path)``: the only function usable as a condition operand."""

    operand: Operand

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


Operand = Path | Literal | Size


# --- conditions -------------------------------------------------------------------


@dataclass(frozen=True)
class Compare(Node):
    op: str  # one of COMPARATORS
    left: Operand
    right: Operand

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Between(Node):
    value: Operand
    low: Operand
    high: Operand

    def children(self) -> tuple[Node, ...]:
        return (self.value, self.low, self.high)


@dataclass(frozen=True)
class In(Node):
    value: Operand
    options: tuple[Operand, ...]

    def children(self) -> tuple[Node, ...]:
        return (self.value, *self.options)


@dataclass(frozen=True)
class And(Node):
    left: Condition
    right: Condition

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Or(Node):
    left: Condition
    right: Condition

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Not(Node):
    operand: Condition

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class AttributeExists(Node):
    path: Path

    def children(self) -> tuple[Node, ...]:
        return (self.path,)


@dataclass(frozen=True)
class AttributeNotExists(Node):
    path: Path

    def children(self) -> tuple[Node, ...]:
        return (self.path,)


@dataclass(frozen=True)
class AttributeType(Node):
    value: Operand
    type_name: Operand  # a Literal holding "S", "N", ... once validated

    def children(self) -> tuple[Node, ...]:
        return (self.value, self.type_name)


@dataclass(frozen=True)
class BeginsWith(Node):
    value: Operand
    prefix: Operand

    def children(self) -> tuple[Node, ...]:
        return (self.value, self.prefix)


@dataclass(frozen=True)
class Contains(Node):
    value: Operand
    operand: Operand

    def children(self) -> tuple[Node, ...]:
        return (self.value, self.operand)


Condition = (
    Compare
    | Between
    | In
    | And
    | Or
    | Not
    | AttributeExists
    | AttributeNotExists
    | AttributeType
    | BeginsWith
    | Contains
)


# --- updates ----------------------------------------------------------------------


@dataclass(frozen=True)
class IfNotExists(Node):
    path: Path
    default: SetOperand

    def children(self) -> tuple[Node, ...]:
        return (self.path, self.default)


@dataclass(frozen=True)
class ListAppend(Node):
    left: SetOperand
    right: SetOperand

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


SetOperand = Path | Literal | IfNotExists | ListAppend


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str  # "+" or "-"
    left: SetOperand
    right: SetOperand

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


SetValue = SetOperand | Arithmetic


@dataclass(frozen=True)
class SetAction(Node):
    path: Path
    value: SetValue

    def children(self) -> tuple[Node, ...]:
        return (self.path, self.value)


@dataclass(frozen=True)
class RemoveAction(Node):
    path: Path

    def children(self) -> tuple[Node, ...]:
        return (self.path,)


@dataclass(frozen=True)
class AddAction(Node):
    """ADD.  ``legacy`` marks AttributeUpdates' ADD, which also appends lists
    and words its runtime type errors differently."""

    path: Path
    value: Literal
    legacy: bool = False

    def children(self) -> tuple[Node, ...]:
        return (self.path, self.value)


@dataclass(frozen=True)
class DeleteAction(Node):
    """DELETE of set elements (legacy DELETE without a value is a RemoveAction)."""

    path: Path
    value: Literal
    legacy: bool = False

    def children(self) -> tuple[Node, ...]:
        return (self.path, self.value)


Action = SetAction | RemoveAction | AddAction | DeleteAction


@dataclass(frozen=True)
class UpdatePlan(Node):
    """A validated UpdateExpression (or AttributeUpdates), actions in written order."""

    actions: tuple[Action, ...]

    def children(self) -> tuple[Node, ...]:
        return self.actions

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every document path the plan sets or removes (its targets)."""
        return tuple(action.path for action in self.actions)

    def top_level_names(self) -> set[str]:
        """Top-level attributes the plan writes (not those it only reads)."""
        return {path.top for path in self.paths}

    def read_names(self) -> set[str]:
        """Top-level attributes the plan reads (SET operands, ADD/DELETE targets)."""
        names: set[str] = set()
        for action in self.actions:
            if isinstance(action, SetAction):
                names |= action.value.top_level_names()
            elif isinstance(action, AddAction | DeleteAction):
                names.add(action.path.top)
        return names


# --- projections and key conditions -----------------------------------------------


@dataclass(frozen=True)
class Projection(Node):
    paths: tuple[Path, ...]

    def children(self) -> tuple[Node, ...]:
        return self.paths


@dataclass(frozen=True)
class KeyCondition:
    """A Query's key condition, reduced to what storage needs for a range scan."""

    hash_value: Value  # equality on the partition key
    range_op: str | None  # None | EQ | LT | LE | GT | GE | BETWEEN | BEGINS_WITH
    range_values: tuple[Value, ...]  # 0, 1 or 2 values


@dataclass(frozen=True)
class Invalid(Node):
    """Stands in for a construct already reported as an error.

    The parser keeps going after a semantic error so that it can report the
    error DynamoDB would rank first; an ``Invalid`` never leaves the parser.
    """
