"""Semantic checks, run while the parser builds nodes, before anything executes.

DynamoDB reports one error per request, and when an expression has several
problems the one it reports depends on a fixed ranking of error categories
(a reserved word beats an undefined placeholder, which beats a bad function
operand...).  So checks do not raise: they record into ``Diagnostics`` and
the parser raises the top-ranked one once the whole expression is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from tablekeeper.engine.values import compare, encode_value, type_of

from .ast import (
    AttributeExists,
    AttributeNotExists,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Condition,
    Contains,
    IfNotExists,
    In,
    Invalid,
    ListAppend,
    Literal,
    Node,
    Operand,
    Path,
    SetOperand,
    Size,
)

# Categories, highest rank first, per expression kind.
CONDITION_RANKING: Final = (
    "parens",
    "unknown_function",
    "misused_function",
    "reserved",
    "placeholder",
    "nesting",
    "operand",
    "distinct",
    "function",
)
UPDATE_RANKING: Final = (
    "reserved",
    "unknown_function",
    "misused_function",
    "section",
    "name",
    "value",
    "nesting",
    "overlap",
    "conflict",
    "operand",
    "function",
)
PROJECTION_RANKING: Final = ("reserved", "name", "nesting", "overlap", "conflict")

# Boolean functions: what a call may be when it stands where a condition belongs.
_CONDITION_NODES: Final = (AttributeExists, AttributeNotExists, AttributeType, BeginsWith, Contains)

CONDITION_FUNCTIONS: Final = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
UPDATE_FUNCTIONS: Final = {"if_not_exists": 2, "list_append": 2}

ATTRIBUTE_TYPES: Final = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})
MAX_IN_OPERANDS: Final = 100

# ADD/DELETE operand errors spell types out in full.
LONG_TYPE_NAMES: Final = {
    "S": "STRING",
    "N": "NUMBER",
    "B": "BINARY",
    "NULL": "NULL",
    "BOOL": "BOOLEAN",
    "L": "LIST",
    "M": "MAP",
    "SS": "STRING SET",
    "NS": "NUMBER SET",
    "BS": "BINARY SET",
}


class Diagnostics:
    """Deferred errors, each tagged with a category; the first of the
    highest-ranked category is the one reported."""

    def __init__(self, ranking: Sequence[str]) -> None:
        self._ranking = ranking
        self._errors: list[tuple[str, str]] = []

    def add(self, category: str, message: str) -> None:
        assert category in self._ranking, category
        self._errors.append((category, message))

    def mark(self) -> int:
        return len(self._errors)

    def reset(self, mark: int) -> None:
        del self._errors[mark:]

    def first(self) -> str | None:
        for category in self._ranking:
            for recorded, message in self._errors:
                if recorded == category:
                    return message
        return None


@dataclass(frozen=True)
class Call(Node):
    """A function call as written, before it is known where it may appear.

    Like ``Invalid``, a parse-time node only: the builders below turn it into
    ``Size``, a boolean function node, ``IfNotExists`` or ``ListAppend``.
    """

    name: str
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.args


def static_type(node: Node) -> str | None:
    """The type an operand is known to have before execution (None: a path)."""
    if isinstance(node, Literal):
        return type_of(node.value)
    if isinstance(node, Size):
        return "N"
    if isinstance(node, _CONDITION_NODES):
        return "BOOL"
    return None


def literal_text(literal: Literal) -> str:
    """An AttributeValue as DynamoDB prints it in messages: {N:5}, {S:a}."""
    ((tag, data),) = encode_value(literal.value).items()
    return f"{{{tag}:{data}}}"


# --- conditions -------------------------------------------------------------------


def _operand_error(name: str, operand_type: str) -> str:
    return (
        "Incorrect operand type for operator or function; "
        f"operator or function: {name}, operand type: {operand_type}"
    )


def condition_call(call: Call, diag: Diagnostics) -> Node:
    """Type a function call written in a condition (Size or a boolean node)."""
    if call.name in UPDATE_FUNCTIONS:
        diag.add(
            "unknown_function",
            f"The function is not allowed in a condition expression; function: {call.name}",
        )
        return Invalid()
    arity = CONDITION_FUNCTIONS.get(call.name)
    if arity is None:
        diag.add("unknown_function", f"Invalid function name; function: {call.name}")
        return Invalid()
    args = [condition_operand(arg, diag) for arg in call.args]
    if len(args) != arity:
        diag.add(
            "operand",
            "Incorrect number of operands for operator or function; "
            f"operator or function: {call.name}, number of operands: {len(args)}",
        )
        return Invalid()
    _check_distinct(call.name, args, diag)
    return _typed_condition_call(call.name, args, diag)


def _typed_condition_call(name: str, args: list[Node], diag: Diagnostics) -> Node:
    first = args[0]
    if name in ("attribute_exists", "attribute_not_exists"):
        if not isinstance(first, Path):
            diag.add(
                "function",
                f"Operator or function requires a document path; operator or function: {name}",
            )
            return Invalid()
        return AttributeExists(first) if name == "attribute_exists" else AttributeNotExists(first)
    if name == "size":
        if static_type(first) in ("N", "BOOL", "NULL"):
            diag.add("function", _operand_error(name, str(static_type(first))))
        return Size(_as_operand(first))
    second = args[1]
    if name == "begins_with":
        for arg in args:
            known = static_type(arg)
            if known is not None and known not in ("S", "B"):
                diag.add("function", _operand_error(name, known))
                break
        return BeginsWith(_as_operand(first), _as_operand(second))
    if name == "attribute_type":
        known = static_type(second)
        if known != "S":
            diag.add("function", _operand_error(name, known or "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}"))
        elif isinstance(second, Literal) and second.value not in ATTRIBUTE_TYPES:
            diag.add(
                "function",
                f"Invalid attribute type name found; type: {second.value}, "
                "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
            )
        return AttributeType(_as_operand(first), _as_operand(second))
    return Contains(_as_operand(first), _as_operand(second))


def _as_operand(node: Node) -> Operand:
    """Narrow to an operand; anything else was already reported."""
    if isinstance(node, Path | Literal | Size):
        return node
    return Path(("",))


def condition_operand(node: Node, diag: Diagnostics) -> Node:
    """An operand of a comparison or function: only size() may be a call there."""
    if not isinstance(node, Call):
        return node
    typed = condition_call(node, diag)
    if not isinstance(typed, Size | Invalid):
        diag.add(
            "misused_function",
            "The function is not allowed to be used this way in an expression; "
            f"function: {node.name}",
        )
    return typed


def condition_from_call(call: Call, diag: Diagnostics) -> Condition | Invalid:
    """A call written where a condition belongs (``attribute_exists(a)``)."""
    typed = condition_call(call, diag)
    if isinstance(typed, Size):
        diag.add(
            "misused_function",
            "The function is not allowed to be used this way in an expression; function: size",
        )
        return Invalid()
    if isinstance(typed, _CONDITION_NODES):
        return typed
    return Invalid()


def _check_distinct(name: str, args: Sequence[Node], diag: Diagnostics) -> None:
    if len(args) == 2 and isinstance(args[0], Path) and args[0] == args[1]:
        diag.add(
            "distinct",
            "The first operand must be distinct from the remaining operands for this "
            f"operator or function; operator: {name}, first operand: {args[0]}",
        )


def _check_orderable(name: str, operands: Iterable[Node], diag: Diagnostics) -> None:
    """<, <=, >, >= and BETWEEN only order S, N and B; a constant of another
    type is a request error (an attribute of another type just compares false)."""
    for operand in operands:
        if isinstance(operand, Literal) and type_of(operand.value) not in ("S", "N", "B"):
            diag.add("function", _operand_error(name, type_of(operand.value)))
            return


def build_compare(op: str, left: Node, right: Node, diag: Diagnostics) -> Compare:
    left = condition_operand(left, diag)
    right = condition_operand(right, diag)
    _check_distinct(op, [left, right], diag)
    if op not in ("=", "<>"):
        _check_orderable(op, (left, right), diag)
    return Compare(op, _as_operand(left), _as_operand(right))


def build_between(value: Node, low: Node, high: Node, diag: Diagnostics) -> Between:
    value, low, high = (condition_operand(node, diag) for node in (value, low, high))
    _check_orderable("BETWEEN", (value, low, high), diag)
    if isinstance(low, Literal) and isinstance(high, Literal):
        low_type, high_type = type_of(low.value), type_of(high.value)
        bounds = (
            f"lower bound operand: AttributeValue: {literal_text(low)}, "
            f"upper bound operand: AttributeValue: {literal_text(high)}"
        )
        if low_type != high_type:
            diag.add(
                "function",
                "The BETWEEN operator requires same data type for lower and upper bounds; "
                + bounds,
            )
        elif low_type in ("S", "N", "B") and compare(low.value, high.value) > 0:
            diag.add(
                "function",
                "The BETWEEN operator requires upper bound to be greater than or equal to "
                "lower bound; " + bounds,
            )
    return Between(_as_operand(value), _as_operand(low), _as_operand(high))


def build_in(value: Node, options: Sequence[Node], diag: Diagnostics) -> In:
    value = condition_operand(value, diag)
    typed = [condition_operand(option, diag) for option in options]
    if len(typed) > MAX_IN_OPERANDS:
        diag.add(
            "operand",
            f"The IN operator is provided with too many operands; number of operands: {len(typed)}",
        )
    return In(_as_operand(value), tuple(_as_operand(option) for option in typed))


# --- updates ----------------------------------------------------------------------


def update_operand(node: Node, diag: Diagnostics, *, inside_list_append: bool = False) -> Node:
    """An operand of a SET value: a path, a value, if_not_exists or list_append."""
    if not isinstance(node, Call):
        return node
    if node.name in CONDITION_FUNCTIONS:
        diag.add(
            "unknown_function",
            f"The function is not allowed in an update expression; function: {node.name}",
        )
        return Invalid()
    arity = UPDATE_FUNCTIONS.get(node.name)
    if arity is None:
        diag.add("unknown_function", f"Invalid function name; function: {node.name}")
        return Invalid()
    if node.name == "list_append" and inside_list_append:
        # DynamoDB refuses list_append(list_append(...), ...) after parsing it.
        diag.add(
            "misused_function",
            "The function is not allowed to be used this way in an expression; "
            "function: list_append",
        )
    args = [
        update_operand(arg, diag, inside_list_append=node.name == "list_append")
        for arg in node.args
    ]
    if len(args) != arity:
        diag.add(
            "function",
            "Incorrect number of operands for operator or function; "
            f"operator or function: {node.name}, number of operands: {len(args)}",
        )
        return Invalid()
    if node.name == "if_not_exists":
        if not isinstance(args[0], Path):
            diag.add(
                "function",
                "Operator or function requires a document path; "
                "operator or function: if_not_exists",
            )
            return Invalid()
        return IfNotExists(args[0], _as_set_operand(args[1]))
    for arg in args:
        if isinstance(arg, Literal) and type_of(arg.value) != "L":
            diag.add("function", _operand_error("list_append", type_of(arg.value)))
            break
    return ListAppend(_as_set_operand(args[0]), _as_set_operand(args[1]))


def _as_set_operand(node: Node) -> SetOperand:
    if isinstance(node, Path | Literal | IfNotExists | ListAppend):
        return node
    return Path(("",))


def check_arithmetic(op: str, left: Node, right: Node, diag: Diagnostics) -> None:
    for operand in (left, right):
        if isinstance(operand, Literal) and type_of(operand.value) != "N":
            diag.add("function", _operand_error(op, type_of(operand.value)))
            return


def check_add_delete_operand(clause: str, value: Literal, diag: Diagnostics) -> None:
    """ADD takes a number or a set, DELETE a set; anything else is refused
    before execution."""
    kind = type_of(value.value)
    allowed = ("N", "SS", "NS", "BS") if clause == "ADD" else ("SS", "NS", "BS")
    if kind not in allowed:
        diag.add(
            "operand",
            "Incorrect operand type for operator or function; "
            f"operator: {clause}, operand type: {LONG_TYPE_NAMES[kind]}, "
            f"typeSet: ALLOWED_FOR_{clause}_OPERAND",
        )


# --- paths shared by updates and projections ----------------------------------------


def check_paths_disjoint(paths: Sequence[Path], diag: Diagnostics) -> None:
    """No path may equal or contain another (overlap), nor address the same
    container both as a map and as a list (conflict)."""
    for index, later in enumerate(paths):
        for earlier in paths[:index]:
            problem = _path_clash(earlier, later)
            if problem is not None:
                diag.add(
                    problem,
                    f"Two document paths {problem} with each other; must remove or rewrite "
                    f"one of these paths; path one: {earlier}, path two: {later}",
                )


def _path_clash(one: Path, two: Path) -> str | None:
    for a, b in zip(one.elements, two.elements, strict=False):
        if isinstance(a, int) != isinstance(b, int):
            return "conflict"
        if a != b:
            return None
    return "overlap"
