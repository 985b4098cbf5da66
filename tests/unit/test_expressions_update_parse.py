"""UpdateExpression parsing and validation, with DynamoDB's wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import ExpressionContext, parse_update
from tablekeeper.engine.expressions.ast import (
    AddAction,
    Arithmetic,
    DeleteAction,
    IfNotExists,
    ListAppend,
    Literal,
    Path,
    RemoveAction,
    SetAction,
)

PREFIX = "Invalid UpdateExpression: "
VALUES = {
    ":s": "a",
    ":n": Decimal(1),
    ":b": b"a",
    ":t": True,
    ":null": None,
    ":ss": frozenset({"a"}),
    ":ns": frozenset({Decimal(1)}),
    ":bs": frozenset({b"a"}),
    ":m": {},
    ":l": [],
}


def _parse(text: str, names: dict | None = None):
    return parse_update(text, ExpressionContext(names, VALUES))


def _error(text: str, names: dict | None = None, values: dict | None = None) -> str:
    with pytest.raises(ValidationException) as caught:
        parse_update(text, ExpressionContext(names, values if values is not None else VALUES))
    return caught.value.message


def test_each_clause_parses_to_its_action():
    plan = _parse("SET a = :n REMOVE b ADD c :n DELETE d :ss")
    assert plan.actions == (
        SetAction(Path(("a",)), Literal(Decimal(1))),
        RemoveAction(Path(("b",))),
        AddAction(Path(("c",)), Literal(Decimal(1))),
        DeleteAction(Path(("d",)), Literal(frozenset({"a"}))),
    )


def test_set_value_may_add_or_subtract_two_operands():
    plan = _parse("SET a = if_not_exists(a, :n) + :n, b = b - :n")
    assert plan.actions[0].value == Arithmetic(
        "+", IfNotExists(Path(("a",)), Literal(Decimal(1))), Literal(Decimal(1))
    )
    assert plan.actions[1].value == Arithmetic("-", Path(("b",)), Literal(Decimal(1)))


def test_parenthesised_operands_around_an_operator():
    assert _parse("SET a = (b) + (:n)").actions[0].value == Arithmetic(
        "+", Path(("b",)), Literal(Decimal(1))
    )


def test_whole_set_value_may_be_parenthesised():
    assert _parse("SET a = (b + :n)").actions[0].value == Arithmetic(
        "+", Path(("b",)), Literal(Decimal(1))
    )


def test_list_append_may_wrap_if_not_exists():
    value = _parse("SET a = list_append(if_not_exists(a, :l), :l)").actions[0].value
    assert value == ListAppend(IfNotExists(Path(("a",)), Literal([])), Literal([]))


def test_paths_lists_every_target_in_order():
    plan = _parse("REMOVE x.y SET a[2] = :n ADD c :n")
    assert plan.paths == (Path(("x", "y")), Path(("a", 2)), Path(("c",)))


def test_top_level_names_are_the_written_attributes():
    assert _parse("SET a.b = c, d = :n").top_level_names() == {"a", "d"}


def test_read_names_are_the_attributes_operands_read():
    assert _parse("SET a = c, d = :n ADD e :n").read_names() == {"c", "e"}


@pytest.mark.parametrize(
    "text, clause",
    [
        ("set a = #c set c = :d", "SET"),
        ("remove #d set a = b remove e", "REMOVE"),
        ("add #d :e set a = b add e :f", "ADD"),
        ("delete #d :e set a = b delete #e :f", "DELETE"),
    ],
)
def test_each_clause_may_appear_only_once(text, clause):
    # Undefined placeholders rank below the repeated section.
    assert _error(text, {"#a": "a"}, {":a": "a"}) == (
        PREFIX + f'The "{clause}" section can only be used once in an update expression;'
    )


def test_reserved_word_is_refused_before_everything_else():
    assert _error(" set #c = :c set abOrt = true ", {"#a": "a"}, {":a": "a"}) == (
        PREFIX + "Attribute name is a reserved keyword; reserved keyword: abOrt"
    )


def test_unknown_function_outranks_sections_and_placeholders():
    assert _error("set #c = if_not_exist(:c) set c = d", {"#a": "a"}, {":a": "a"}) == (
        PREFIX + "Invalid function name; function: if_not_exist"
    )


def test_condition_functions_are_refused_in_updates():
    assert _error("SET a = size(b)") == (
        PREFIX + "The function is not allowed in an update expression; function: size"
    )


def test_nested_list_append_is_refused():
    assert _error("SET a = list_append(list_append(:l, :l), :l)") == (
        PREFIX + "The function is not allowed to be used this way in an expression; "
        "function: list_append"
    )


def test_undefined_name_outranks_undefined_value():
    assert _error("SET #c = if_not_exists(:c)", {"#a": "a"}, {":a": "a"}) == (
        PREFIX + "An expression attribute name used in the document path is not defined; "
        "attribute name: #c"
    )


def test_undefined_value_is_named():
    assert _error("SET #a = if_not_exists(:c)", {"#a": "a"}, {":a": "a"}) == (
        PREFIX + "An expression attribute value used in expression is not defined; "
        "attribute value: :c"
    )


@pytest.mark.parametrize(
    "text, one, two",
    [
        ("set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)", "[c, [1], a]", "[c]"),
        ("set c.b.#c = a, c = a, #d = a", "[c, b, c]", "[c]"),
        ("set a = b remove a, #c, #d", "[a]", "[a]"),
        ("set #c[3].#d = a, #c[3] = a", "[c, [3], [3]]", "[c, [3]]"),
        ("remove c, #c.a, #d", "[c]", "[c, a]"),
        ("remove a, #c, a, #d", "[a]", "[a]"),
    ],
)
def test_overlapping_paths_are_refused(text, one, two):
    assert _error(text, {"#c": "c", "#d": "[3]"}, {":a": "a"}) == (
        PREFIX + "Two document paths overlap with each other; must remove or rewrite one of "
        f"these paths; path one: {one}, path two: {two}"
    )


@pytest.mark.parametrize(
    "text, one, two",
    [
        ("set #c[3].#d = a, #c.#d[3] = if_not_exists(a)", "[c, [3], [3]]", "[c, [3], [3]]"),
        ("remove a.#c set a[1] = #d", "[a, c]", "[a, [1]]"),
        ("SET a.b = :n, a[1] = :n", "[a, b]", "[a, [1]]"),
    ],
)
def test_map_and_list_access_to_one_path_conflict(text, one, two):
    assert _error(text, {"#c": "c", "#d": "[3]"}, {":n": Decimal(1)}) == (
        PREFIX + "Two document paths conflict with each other; must remove or rewrite one of "
        f"these paths; path one: {one}, path two: {two}"
    )


def test_paths_are_compared_after_placeholders_resolve():
    assert "overlap" in _error("SET #a1 = :n, #a2 = :n", {"#a1": "a", "#a2": "a"}, {":n": 1})


@pytest.mark.parametrize(
    "value, shown",
    [
        (":s", "STRING"),
        (":null", "NULL"),
        (":t", "BOOLEAN"),
        (":b", "BINARY"),
        (":m", "MAP"),
        (":l", "LIST"),
    ],
)
def test_add_refuses_operands_other_than_numbers_and_sets(value, shown):
    assert _error(f"ADD a.b {value}") == (
        PREFIX + "Incorrect operand type for operator or function; operator: ADD, "
        f"operand type: {shown}, typeSet: ALLOWED_FOR_ADD_OPERAND"
    )


@pytest.mark.parametrize("value, shown", [(":s", "STRING"), (":n", "NUMBER"), (":l", "LIST")])
def test_delete_refuses_operands_other_than_sets(value, shown):
    assert _error(f"DELETE a.b {value}") == (
        PREFIX + "Incorrect operand type for operator or function; operator: DELETE, "
        f"operand type: {shown}, typeSet: ALLOWED_FOR_DELETE_OPERAND"
    )


def test_add_operand_type_outranks_function_errors():
    text = "set b = list_append(:s, a), c = if_not_exists(a) add a.b :s"
    assert _error(text).endswith(
        "operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"
    )


@pytest.mark.parametrize("text", ["set a = if_not_exists(c)", "set a = list_append(c)"])
def test_update_function_arity_is_checked(text):
    name = text.split("= ")[1].split("(")[0]
    assert _error(text) == (
        PREFIX + "Incorrect number of operands for operator or function; "
        f"operator or function: {name}, number of operands: 1"
    )


@pytest.mark.parametrize(
    "text", ["set a = if_not_exists(:n, c)", "set a = if_not_exists(if_not_exists(a, b), c)"]
)
def test_if_not_exists_needs_a_path_first(text):
    assert _error(text) == (
        PREFIX + "Operator or function requires a document path; "
        "operator or function: if_not_exists"
    )


@pytest.mark.parametrize(
    "text, function, shown",
    [
        ("set a = list_append(:s, a)", "list_append", "S"),
        ("set a = list_append(a, :n)", "list_append", "N"),
        ("set a = list_append(:m, a)", "list_append", "M"),
        ("set a = a + :s", "+", "S"),
        ("set a = :b - a", "-", "B"),
        ("set a = a + :ns", "+", "NS"),
        ("set a = a - :l", "-", "L"),
    ],
)
def test_constant_operands_of_the_wrong_type_are_refused(text, function, shown):
    assert _error(text) == (
        PREFIX + "Incorrect operand type for operator or function; "
        f"operator or function: {function}, operand type: {shown}"
    )


def test_a_list_index_past_32_bits_is_refused_in_an_update() -> None:
    assert _error("SET l[4294967295] = :n") == (
        PREFIX + "List index is not within the allowable range; index: [4294967295]")
