"""The legacy parameters, converted into the one AST.

Expected, QueryFilter, ScanFilter, KeyConditions, AttributeUpdates and
AttributesToGet predate expressions.  Each becomes the node an expression
would have produced, so evaluation, update and projection have one input
shape; the conversions validate with DynamoDB's legacy wording, which
differs from the expression wording.  Inputs are wire-shaped (AttributeValue
JSON), decoded here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from tablekeeper.engine.errors import SerializationException, ValidationException
from tablekeeper.engine.values import Value, compare, decode_value, type_of

from .ast import (
    Action,
    AddAction,
    And,
    AttributeExists,
    AttributeNotExists,
    BeginsWith,
    Between,
    Compare,
    Condition,
    Contains,
    DeleteAction,
    In,
    KeyCondition,
    Literal,
    Not,
    Or,
    Path,
    Projection,
    RemoveAction,
    SetAction,
    UpdatePlan,
)
from .keys import key_condition_from

_INVALID: Final = "One or more parameter values were invalid: "

# DynamoDB's enum, in the order its messages list it.
COMPARISON_OPERATORS: Final = (
    "IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT",
    "NOT_NULL", "NE", "LE", "BEGINS_WITH", "GE", "CONTAINS",
)  # fmt: skip
_ARGUMENTS: Final = {
    "EQ": 1, "NE": 1, "LE": 1, "LT": 1, "GE": 1, "GT": 1, "CONTAINS": 1,
    "NOT_CONTAINS": 1, "BEGINS_WITH": 1, "NULL": 0, "NOT_NULL": 0, "BETWEEN": 2,
}  # fmt: skip
_ORDERED: Final = frozenset({"S", "N", "B"})
# Types each operator accepts in AttributeValueList (EQ and NE take any).
_ALLOWED_TYPES: Final = {
    "LT": _ORDERED,
    "LE": _ORDERED,
    "GT": _ORDERED,
    "GE": _ORDERED,
    "IN": _ORDERED,
    "BETWEEN": _ORDERED,
    "BEGINS_WITH": frozenset({"S", "B"}),
    "CONTAINS": frozenset({"S", "N", "B", "BOOL", "NULL"}),
    "NOT_CONTAINS": frozenset({"S", "N", "B", "BOOL", "NULL"}),
}
_COMPARE_OPS: Final = {"EQ": "=", "NE": "<>", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
_NOT_INDEXABLE: Final = frozenset({"NULL", "NOT_NULL", "CONTAINS", "NOT_CONTAINS", "IN", "NE"})
_SET_TYPES: Final = frozenset({"SS", "NS", "BS"})


def _lower_first(word: str) -> str:
    return word[:1].lower() + word[1:]


def _enum_error(value: Any, where: str, allowed: Sequence[str]) -> ValidationException:
    if value is None:
        return ValidationException(
            f"1 validation error detected: Value null at '{where}' failed to satisfy "
            "constraint: Member must not be null"
        )
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def _require_structure(spec: Any) -> None:
    """A legacy condition or update member must be a JSON object (else SerializationException)."""
    if not isinstance(spec, dict):
        raise SerializationException("Unexpected value type in payload")


def _operator(spec: Mapping[str, Any], where: str) -> str:
    op = spec.get("ComparisonOperator")
    if op not in COMPARISON_OPERATORS:
        raise _enum_error(op, where, COMPARISON_OPERATORS)
    return str(op)


def _checked_values(op: str, wire_values: Sequence[Any]) -> list[Value]:
    """Decode an AttributeValueList and check it fits the operator."""
    if not isinstance(wire_values, list):  # a list on the wire: anything else is malformed
        raise SerializationException("Unexpected value type in payload")
    values = [decode_value(wire) for wire in wire_values]
    expected = _ARGUMENTS.get(op)
    if (expected is None and not values) or (expected is not None and len(values) != expected):
        raise ValidationException(
            _INVALID + f"Invalid number of argument(s) for the {op} ComparisonOperator"
        )
    if values:
        first_type = type_of(values[0])
        if any(type_of(value) != first_type for value in values):
            raise ValidationException(
                _INVALID + "AttributeValues inside AttributeValueList must be of same type"
            )
        allowed = _ALLOWED_TYPES.get(op)
        if allowed is not None and first_type not in allowed:
            raise ValidationException(
                _INVALID
                + f"ComparisonOperator {op} is not valid for {first_type} AttributeValue type"
            )
        if op == "BETWEEN" and compare(values[0], values[1]) > 0:
            raise ValidationException(
                "The BETWEEN condition was provided a range where the lower bound is "
                "greater than the upper bound"
            )
    return values


def _comparison(name: str, op: str, values: Sequence[Value]) -> Condition:
    """The expression node a legacy ComparisonOperator means."""
    path = Path((name,))
    literals = [Literal(value) for value in values]
    if op in _COMPARE_OPS:
        return Compare(_COMPARE_OPS[op], path, literals[0])
    if op == "NULL":
        return AttributeNotExists(path)
    if op == "NOT_NULL":
        return AttributeExists(path)
    if op == "CONTAINS":
        return Contains(path, literals[0])
    if op == "NOT_CONTAINS":
        # Unlike NOT contains(...), NOT_CONTAINS is false for an absent attribute.
        return And(AttributeExists(path), Not(Contains(path, literals[0])))
    if op == "BEGINS_WITH":
        return BeginsWith(path, literals[0])
    if op == "IN":
        return In(path, tuple(literals))
    return Between(path, literals[0], literals[1])


def _combine(nodes: list[Condition], conditional_operator: str | None) -> Condition | None:
    if conditional_operator not in (None, "AND", "OR"):
        raise _enum_error(conditional_operator, "conditionalOperator", ("OR", "AND"))
    if not nodes:
        return None
    joined = nodes[0]
    for node in nodes[1:]:
        joined = Or(joined, node) if conditional_operator == "OR" else And(joined, node)
    return joined


def expected_to_condition(
    expected: dict[str, Any] | None, conditional_operator: str | None
) -> Condition | None:
    """Expected + ConditionalOperator as a condition; None for an empty map."""
    nodes: list[Condition] = []
    for name, spec in (expected or {}).items():
        _require_structure(spec)
        has_list = spec.get("AttributeValueList") is not None
        has_value = spec.get("Value") is not None
        if has_list and has_value:
            raise ValidationException(
                _INVALID
                + f"Value and AttributeValueList cannot be used together for Attribute: {name}"
            )
        if spec.get("ComparisonOperator") is not None:
            nodes.append(_expected_comparison(name, spec, has_list, has_value))
        elif has_list:
            raise ValidationException(
                _INVALID + "AttributeValueList can only be used with a ComparisonOperator "
                f"for Attribute: {name}"
            )
        else:
            nodes.append(_expected_exists(name, spec, has_value))
    return _combine(nodes, conditional_operator)


def _expected_comparison(
    name: str, spec: Mapping[str, Any], has_list: bool, has_value: bool
) -> Condition:
    op = _operator(spec, f"expected.{name}.member.comparisonOperator")
    if spec.get("Exists") is not None:
        raise ValidationException(
            _INVALID
            + f"Exists and ComparisonOperator cannot be used together for Attribute: {name}"
        )
    if op not in ("NULL", "NOT_NULL") and not has_list and not has_value:
        raise ValidationException(
            _INVALID + f"Value or AttributeValueList must be used with ComparisonOperator: {op} "
            f"for Attribute: {name}"
        )
    wire = spec["AttributeValueList"] if has_list else ([spec["Value"]] if has_value else [])
    return _comparison(name, op, _checked_values(op, wire))


def _expected_exists(name: str, spec: Mapping[str, Any], has_value: bool) -> Condition:
    exists = spec.get("Exists")
    if exists is not None and not isinstance(exists, bool):
        raise SerializationException("Unexpected value type in payload")
    if exists is None or exists:
        if not has_value:
            shown = "null" if exists is None else "true"
            raise ValidationException(
                _INVALID + f"Value must be provided when Exists is {shown} for Attribute: {name}"
            )
        return Compare("=", Path((name,)), Literal(decode_value(spec["Value"])))
    if has_value:
        raise ValidationException(
            _INVALID + f"Value cannot be used when Exists is false for Attribute: {name}"
        )
    return AttributeNotExists(Path((name,)))


def filter_to_condition(
    conditions: dict[str, Any] | None, conditional_operator: str | None, param: str
) -> Condition | None:
    """QueryFilter / ScanFilter (``param`` names which) as a condition; None when empty."""
    nodes: list[Condition] = []
    for name, spec in (conditions or {}).items():
        _require_structure(spec)
        op = _operator(spec, f"{_lower_first(param)}.{name}.member.comparisonOperator")
        values = _checked_values(op, spec.get("AttributeValueList") or [])
        nodes.append(_comparison(name, op, values))
    return _combine(nodes, conditional_operator)


def key_conditions_to_key_condition(
    key_conditions: dict[str, Any], hash_key: str, range_key: str | None
) -> KeyCondition:
    """Query's legacy KeyConditions, checked against the key schema."""
    conditions: dict[str, tuple[str, tuple[Value, ...]]] = {}
    for name, spec in (key_conditions or {}).items():
        _require_structure(spec)
        op = _operator(spec, f"keyConditions.{name}.member.comparisonOperator")
        conditions[name] = (op, tuple(_checked_values(op, spec.get("AttributeValueList") or [])))
    if len(conditions) not in (1, 2):
        raise ValidationException("Conditions can be of length 1 or 2 only")
    for key in (hash_key, range_key if len(conditions) == 2 else None):
        if key is not None and key not in conditions:
            raise ValidationException(f"Query condition missed key schema element: {key}")
    if any(op in _NOT_INDEXABLE for op, _ in conditions.values()):
        raise ValidationException("Attempted conditional constraint is not an indexable operation")
    return key_condition_from(conditions, hash_key, range_key)


def attribute_updates_to_plan(updates: dict[str, Any] | None, key_names: set[str]) -> UpdatePlan:
    """AttributeUpdates as an UpdatePlan (PUT is SET; DELETE without a value is REMOVE)."""
    actions: list[Action] = []
    for name, spec in (updates or {}).items():
        _require_structure(spec)
        path = Path((name,))
        action = spec.get("Action") or "PUT"
        if action not in ("ADD", "PUT", "DELETE"):
            raise _enum_error(
                action, f"attributeUpdates.{name}.member.action", ("ADD", "PUT", "DELETE")
            )
        if spec.get("Value") is None:
            if action != "DELETE":
                raise ValidationException(
                    _INVALID + "Only DELETE action is allowed when no attribute value is specified"
                )
            actions.append(RemoveAction(path))
            continue
        value = decode_value(spec["Value"])
        kind = type_of(value)
        if action == "DELETE":
            if kind not in _SET_TYPES:
                raise ValidationException(
                    _INVALID + f"DELETE action with value is not supported for the type {kind}"
                )
            actions.append(DeleteAction(path, Literal(value), legacy=True))
        elif action == "ADD":
            if kind not in _SET_TYPES | {"N", "L"}:
                raise ValidationException(
                    _INVALID + f"ADD action is not supported for the type {kind}"
                )
            actions.append(AddAction(path, Literal(value), legacy=True))
        else:
            actions.append(SetAction(path, Literal(value)))
    for name in updates or {}:
        if name in key_names:
            raise ValidationException(
                _INVALID + f"Cannot update attribute {name}. This attribute is part of the key"
            )
    return UpdatePlan(tuple(actions))


def attributes_to_get_to_projection(names: list[str]) -> Projection:
    """AttributesToGet as a projection of top-level names (used literally, dots and all)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationException(_INVALID + f"Duplicate value in attribute name: {name}")
        seen.add(name)
    return Projection(tuple(Path((name,)) for name in names))


def check_conditional_operator(request: Mapping[str, Any], conditions_param: str) -> None:
    """DynamoDB's refusal of a ConditionalOperator with fewer than two conditions to join in
    ``conditions_param`` (Expected, QueryFilter or ScanFilter); checked after the mixing rule."""
    if request.get("ConditionalOperator") is None:
        return
    conditions = request.get(conditions_param)
    count = len(conditions) if isinstance(conditions, dict) else 0
    if count == 0:
        raise ValidationException("ConditionalOperator cannot be used without Filter or Expected")
    if count == 1:
        raise ValidationException(
            "ConditionalOperator can only be used when Filter or Expected has two or more elements"
        )


def check_expression_mix(
    request: Mapping[str, Any], expression_params: list[str], legacy_params: list[str]
) -> None:
    """Refuse mixing expression and legacy parameters, and placeholders
    without an expression to use them.  Parameter lists are in the order
    DynamoDB names them in its messages."""
    used_expressions = [p for p in expression_params if request.get(p) is not None]
    if used_expressions:
        legacy = list(legacy_params)
        # Query may pair legacy KeyConditions with expression filters/projections.
        if (
            request.get("KeyConditions") is not None
            and request.get("KeyConditionExpression") is None
        ):
            legacy = [p for p in legacy if p != "KeyConditions"]
        used_legacy = [p for p in legacy if request.get(p) is not None]
        if used_legacy:
            raise ValidationException(
                "Can not use both expression and non-expression parameters in the same request: "
                f"Non-expression parameters: {{{', '.join(used_legacy)}}} "
                f"Expression parameters: {{{', '.join(used_expressions)}}}"
            )
    if request.get("ExpressionAttributeNames") is not None and not used_expressions:
        raise ValidationException(
            "ExpressionAttributeNames can only be specified when using expressions"
        )
    value_expressions = [p for p in expression_params if p != "ProjectionExpression"]
    if (
        value_expressions
        and request.get("ExpressionAttributeValues") is not None
        and all(request.get(p) is None for p in value_expressions)
    ):
        verb = "are" if len(value_expressions) > 1 else "is"
        raise ValidationException(
            "ExpressionAttributeValues can only be specified when using expressions: "
            f"{' and '.join(value_expressions)} {verb} null"
        )
