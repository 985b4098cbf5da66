"""KeyConditionExpression: a condition narrowed to what a Query can index.

The text is parsed by the one condition parser (so every condition error
comes first, prefixed "Invalid KeyConditionExpression: "); then its shape is
checked against what a key condition may be, with DynamoDB's unprefixed
messages ("Invalid operator used in KeyConditionExpression: OR"), and
finally against the table's key schema.
"""

from __future__ import annotations

from typing import Final

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.values import Value

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
    KeyCondition,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    Size,
)
from .context import ExpressionContext
from .parser import parse_condition

_RANGE_OPS: Final = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}
# "b > :v" written as ":v < b": the operator mirrors when the key is on the right.
_MIRRORED: Final = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_FUNCTION_NAMES: Final = {
    AttributeExists: "attribute_exists",
    AttributeNotExists: "attribute_not_exists",
    AttributeType: "attribute_type",
    Contains: "contains",
}


def parse_key_condition(
    text: str, ctx: ExpressionContext, hash_key: str, range_key: str | None
) -> KeyCondition:
    """Parse a KeyConditionExpression and check it against the key schema."""
    condition = parse_condition(text, ctx, "KeyConditionExpression")
    conditions: dict[str, tuple[str, tuple[Value, ...]]] = {}
    _collect(condition, conditions)
    if len(conditions) > 2:
        raise ValidationException("Conditions can be of length 1 or 2 only")
    return key_condition_from(conditions, hash_key, range_key)


def key_condition_from(
    conditions: dict[str, tuple[str, tuple[Value, ...]]], hash_key: str, range_key: str | None
) -> KeyCondition:
    """Check per-key conditions (operator names EQ, LT...) against the schema."""
    if hash_key not in conditions:
        raise ValidationException(f"Query condition missed key schema element: {hash_key}")
    if len(conditions) == 2 and range_key is not None and range_key not in conditions:
        raise ValidationException(f"Query condition missed key schema element: {range_key}")
    hash_op, hash_values = conditions[hash_key]
    if hash_op != "EQ" or (len(conditions) == 2 and range_key is None):
        raise ValidationException("Query key condition not supported")
    if range_key is not None and range_key in conditions:
        range_op, range_values = conditions[range_key]
        return KeyCondition(hash_values[0], range_op, range_values)
    return KeyCondition(hash_values[0], None, ())


def _collect(node: Condition, conditions: dict[str, tuple[str, tuple[Value, ...]]]) -> None:
    if isinstance(node, And):
        _collect(node.left, conditions)
        _collect(node.right, conditions)
        return
    if isinstance(node, Or | Not | In):
        word = {Or: "OR", Not: "NOT", In: "IN"}[type(node)]
        raise ValidationException(f"Invalid operator used in KeyConditionExpression: {word}")
    if isinstance(node, Compare) and node.op == "<>":
        raise ValidationException("Invalid operator used in KeyConditionExpression: <>")
    if isinstance(node, AttributeExists | AttributeNotExists | AttributeType | Contains):
        name = _FUNCTION_NAMES[type(node)]
        raise ValidationException(f"Invalid operator used in KeyConditionExpression: {name}")
    if isinstance(node, Between):
        _require_key_first(node.value, "BETWEEN")
        operands: tuple[Operand, ...] = (node.value, node.low, node.high)
        op = "BETWEEN"
    elif isinstance(node, BeginsWith):
        _require_key_first(node.value, "begins_with")
        operands = (node.value, node.prefix)
        op = "BEGINS_WITH"
    else:
        assert isinstance(node, Compare)
        operands = (node.left, node.right)
        op = node.op
    name, position = _key_operand(operands)
    if name in conditions:
        raise ValidationException("KeyConditionExpressions must only contain one condition per key")
    if op in _RANGE_OPS:
        op = _RANGE_OPS[op if position == 0 else _MIRRORED[op]]
    values = tuple(operand.value for operand in operands if isinstance(operand, Literal))
    conditions[name] = (op, values)


def _require_key_first(operand: Operand, word: str) -> None:
    if not isinstance(operand, Path):
        raise ValidationException(
            f"Invalid condition in KeyConditionExpression: {word} operator must have the "
            "key attribute as its first operand"
        )


def _key_operand(operands: tuple[Operand, ...]) -> tuple[str, int]:
    """The one key attribute a condition names, and where it stands."""
    found: tuple[str, int] | None = None
    for position, operand in enumerate(operands):
        if isinstance(operand, Size):
            raise ValidationException("KeyConditionExpressions cannot contain nested operations")
        if isinstance(operand, Path):
            if found is not None:
                raise ValidationException(
                    "Invalid condition in KeyConditionExpression: "
                    "Multiple attribute names used in one condition"
                )
            if len(operand.elements) > 1:
                raise ValidationException(
                    "KeyConditionExpressions cannot have conditions on nested attributes"
                )
            found = (operand.top, position)
    if found is None:
        raise ValidationException(
            "Invalid condition in KeyConditionExpression: No key attribute specified"
        )
    return found
