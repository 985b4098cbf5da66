"""Condition / Filter expressions: grammar, placeholders, and validation wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import ExpressionContext, parse_condition
from tablekeeper.engine.expressions.ast import (
    And,
    AttributeExists,
    Between,
    Compare,
    In,
    Literal,
    Not,
    Or,
    Path,
    Size,
)

PREFIX = "Invalid ConditionExpression: "


def _parse(text: str, values: dict | None = None, names: dict | None = None):
    return parse_condition(text, ExpressionContext(names, values))


def _error(text: str, values: dict | None = None, names: dict | None = None, kind: str = "") -> str:
    with pytest.raises(ValidationException) as caught:
        if kind:
            parse_condition(text, ExpressionContext(names, values), kind)
        else:
            _parse(text, values, names)
    return caught.value.message


A, B, C = Path(("a",)), Path(("b",)), Path(("c",))
ONE = {":v": Decimal(1)}


def test_and_binds_tighter_than_or():
    assert _parse("a = :v OR b = :v AND c = :v", ONE) == Or(
        Compare("=", A, Literal(Decimal(1))),
        And(Compare("=", B, Literal(Decimal(1))), Compare("=", C, Literal(Decimal(1)))),
    )


def test_not_binds_tighter_than_and():
    assert _parse("NOT a = :v AND b = :v", ONE) == And(
        Not(Compare("=", A, Literal(Decimal(1)))), Compare("=", B, Literal(Decimal(1)))
    )


def test_parentheses_override_precedence():
    assert _parse("(a = :v OR b = :v) AND c = :v", ONE) == And(
        Or(Compare("=", A, Literal(Decimal(1))), Compare("=", B, Literal(Decimal(1)))),
        Compare("=", C, Literal(Decimal(1))),
    )


def test_parenthesised_operand_is_not_a_group():
    assert _parse("(a) = :v", ONE) == Compare("=", A, Literal(Decimal(1)))


def test_nested_paths_with_names_and_indexes():
    parsed = _parse("#x.y[3].#z = :v", ONE, {"#x": "a.b", "#z": "c"})
    assert parsed == Compare("=", Path(("a.b", "y", 3, "c")), Literal(Decimal(1)))


def test_between_and_in_parse_to_their_nodes():
    assert _parse("a BETWEEN :v AND :v", ONE) == Between(
        A, Literal(Decimal(1)), Literal(Decimal(1))
    )
    assert _parse("a IN (:v, b)", ONE) == In(A, (Literal(Decimal(1)), B))


def test_size_is_an_operand():
    assert _parse("size(a) > :v", ONE) == Compare(">", Size(A), Literal(Decimal(1)))


def test_function_condition_with_space_before_parenthesis():
    assert _parse("attribute_exists (a)") == AttributeExists(A)


def test_top_level_names_lists_every_referenced_attribute():
    assert _parse("a.x = :v AND size(b) > :v", ONE).top_level_names() == {"a", "b"}


def test_reserved_word_is_refused_unescaped():
    assert _error("status = :v", ONE) == (
        PREFIX + "Attribute name is a reserved keyword; reserved keyword: status"
    )


def test_reserved_word_is_accepted_behind_a_placeholder():
    _parse("#s = :v", ONE, {"#s": "status"})


def test_reserved_word_check_is_case_insensitive():
    assert _error("Name = :v", ONE).endswith("reserved keyword: Name")


def test_function_name_is_not_checked_against_reserved_words():
    _parse("size(a) = :v", ONE)


def test_undefined_value_placeholder_is_named():
    assert _error("a = :nope", ONE) == (
        PREFIX + "An expression attribute value used in expression is not defined; "
        "attribute value: :nope"
    )


def test_undefined_name_placeholder_is_named():
    assert _error("#nope = :v", ONE) == (
        PREFIX + "An expression attribute name used in the document path is not defined; "
        "attribute name: #nope"
    )


def test_kind_names_the_expression_in_messages():
    assert _error("", kind="FilterExpression") == (
        "Invalid FilterExpression: The expression can not be empty;"
    )


def test_doubled_parentheses_around_a_condition_are_redundant():
    assert _error("((a = :v))", ONE) == PREFIX + "The expression has redundant parentheses;"


def test_doubled_parentheses_around_an_operand_are_redundant():
    assert _error("((a)) = :v", ONE) == PREFIX + "The expression has redundant parentheses;"


def test_parentheses_around_a_group_and_more_are_not_redundant():
    _parse("((a = :v) AND b = :v)", ONE)


def test_redundant_parentheses_outrank_reserved_words():
    assert _error("((status = :v))", ONE) == PREFIX + "The expression has redundant parentheses;"


def test_unknown_function_is_named():
    assert (
        _error("starts_with(a, :v)", ONE) == PREFIX + "Invalid function name; function: starts_with"
    )


def test_function_names_are_case_sensitive():
    assert (
        _error("ATTRIBUTE_EXISTS(a)")
        == PREFIX + "Invalid function name; function: ATTRIBUTE_EXISTS"
    )


def test_update_functions_are_refused_in_conditions():
    assert _error("if_not_exists(a, :v) = :v", ONE) == (
        PREFIX + "The function is not allowed in a condition expression; function: if_not_exists"
    )


def test_size_alone_is_not_a_condition():
    assert _error("size(a)") == (
        PREFIX + "The function is not allowed to be used this way in an expression; function: size"
    )


def test_boolean_function_is_not_a_comparison_operand():
    assert _error("attribute_exists(a) < :v", ONE) == (
        PREFIX + "The function is not allowed to be used this way in an expression; "
        "function: attribute_exists"
    )


def test_wrong_number_of_function_operands_is_counted():
    assert _error("attribute_exists(a, b)") == (
        PREFIX + "Incorrect number of operands for operator or function; "
        "operator or function: attribute_exists, number of operands: 2"
    )


def test_existence_functions_need_a_path():
    assert _error("attribute_not_exists(:v)", ONE) == (
        PREFIX + "Operator or function requires a document path; "
        "operator or function: attribute_not_exists"
    )


@pytest.mark.parametrize("value, shown", [(Decimal(1), "N"), (True, "BOOL"), ([], "L")])
def test_begins_with_refuses_a_constant_that_is_not_string_or_binary(value, shown):
    assert _error("begins_with(a, :v)", {":v": value}) == (
        PREFIX + "Incorrect operand type for operator or function; "
        f"operator or function: begins_with, operand type: {shown}"
    )


def test_attribute_type_needs_a_string_constant():
    assert _error("attribute_type(a, :v)", ONE) == (
        PREFIX + "Incorrect operand type for operator or function; "
        "operator or function: attribute_type, operand type: N"
    )


def test_attribute_type_refuses_an_unknown_type_name():
    assert _error("attribute_type(a, :t)", {":t": "STRING"}) == (
        PREFIX + "Invalid attribute type name found; type: STRING, "
        "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
    )


def test_size_refuses_a_numeric_constant():
    assert _error("size(:v) = :v", ONE) == (
        PREFIX + "Incorrect operand type for operator or function; "
        "operator or function: size, operand type: N"
    )


def test_comparing_a_path_with_itself_is_refused():
    assert _error("a = a") == (
        PREFIX + "The first operand must be distinct from the remaining operands for this "
        "operator or function; operator: =, first operand: [a]"
    )


def test_function_on_the_same_path_twice_is_refused():
    assert _error("contains(a.b, a.b)").endswith("operator: contains, first operand: [a, b]")


def test_ordering_comparison_refuses_an_unorderable_constant():
    assert _error("a < :l", {":l": [Decimal(1)]}) == (
        PREFIX + "Incorrect operand type for operator or function; "
        "operator or function: <, operand type: L"
    )


def test_equality_accepts_any_constant_type():
    _parse("a = :l AND a <> :m", {":l": [Decimal(1)], ":m": {"x": True}})


def test_between_refuses_bounds_of_different_types():
    values = {":a": "a", ":b": Decimal(1)}
    assert _error("a between :b and :a", values) == (
        PREFIX + "The BETWEEN operator requires same data type for lower and upper bounds; "
        "lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
    )


def test_between_with_lower_bound_above_upper_is_rejected():
    values = {":a": "a", ":b": "b"}
    assert _error("a between :b and :a", values) == (
        PREFIX + "The BETWEEN operator requires upper bound to be greater than or equal to "
        "lower bound; lower bound operand: AttributeValue: {S:b}, "
        "upper bound operand: AttributeValue: {S:a}"
    )


def test_between_refuses_unorderable_bounds():
    assert _error("a BETWEEN :t AND :t", {":t": True}) == (
        PREFIX + "Incorrect operand type for operator or function; "
        "operator or function: BETWEEN, operand type: BOOL"
    )


def test_in_accepts_one_hundred_operands():
    values = {f":v{i}": Decimal(i) for i in range(100)}
    _parse(f"a IN ({', '.join(values)})", values)


def test_in_refuses_more_than_one_hundred_operands():
    values = {f":v{i}": Decimal(i) for i in range(101)}
    assert _error(f"a IN ({', '.join(values)})", values) == (
        PREFIX + "The IN operator is provided with too many operands; number of operands: 101"
    )


def test_unknown_function_outranks_reserved_word():
    assert _error("dog(status) = :v", ONE) == PREFIX + "Invalid function name; function: dog"


def test_reserved_word_outranks_undefined_placeholder():
    assert _error("status = :nope", ONE).endswith("reserved keyword: status")


def test_undefined_placeholder_outranks_operand_type():
    assert _error("begins_with(#n, :v)", ONE).endswith("attribute name: #n")
