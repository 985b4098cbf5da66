"""Syntax errors: one tokenizer, DynamoDB's "token ... near ..." wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import (
    ExpressionContext,
    parse_condition,
    parse_projection,
    parse_update,
)
from tablekeeper.engine.expressions.tokens import IDENT, NAME, NUMBER, UNKNOWN, VALUE, tokenize


def _message(parse, text: str, values: dict | None = None, names: dict | None = None) -> str:
    with pytest.raises(ValidationException) as caught:
        parse(text, ExpressionContext(names, values))
    return caught.value.message


def test_tokens_keep_whitespace_so_messages_can_quote_it():
    assert [t.text for t in tokenize("a  = :v")] == ["a", "  ", "=", " ", ":v"]


def test_identifier_must_start_with_a_letter():
    assert [(t.kind, t.text) for t in tokenize("_a")] == [(UNKNOWN, "_"), (IDENT, "a")]


def test_placeholders_may_start_with_a_digit_after_the_sigil():
    assert [(t.kind, t.text) for t in tokenize("#1a :_2")][::2] == [(NAME, "#1a"), (VALUE, ":_2")]


def test_digits_are_a_number_token():
    assert tokenize("123")[0].kind == NUMBER


def test_empty_expression_is_rejected():
    assert (
        _message(parse_condition, "")
        == "Invalid ConditionExpression: The expression can not be empty;"
    )


def test_blank_expression_counts_as_empty():
    assert (
        _message(parse_update, "   ")
        == "Invalid UpdateExpression: The expression can not be empty;"
    )


def test_early_end_names_eof_and_the_last_token():
    assert _message(parse_condition, "foo") == (
        'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "foo"'
    )


def test_unknown_character_is_quoted_with_its_neighbours():
    assert _message(parse_update, "SET _123 = :v", {":v": Decimal(1)}) == (
        'Invalid UpdateExpression: Syntax error; token: "_", near: "SET _123"'
    )


def test_space_inside_an_attribute_name_is_a_syntax_error():
    assert _message(parse_update, "SET MyStr = my Num") == (
        'Invalid UpdateExpression: Syntax error; token: "Num", near: "my Num"'
    )


def test_numeric_literal_is_not_an_operand():
    assert _message(parse_condition, "a > 4") == (
        'Invalid ConditionExpression: Syntax error; token: "4", near: "> 4"'
    )


def test_doubled_comparator_is_a_syntax_error():
    assert _message(parse_condition, "a = = :v", {":v": Decimal(1)}) == (
        'Invalid ConditionExpression: Syntax error; token: "=", near: "= = :v"'
    )


def test_error_points_at_the_furthest_token_any_alternative_reached():
    # "(a = :v" could open a group or an operand; the group got further.
    assert _message(parse_condition, "(a = :v", {":v": "x"}) == (
        'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":v"'
    )


@pytest.mark.parametrize(
    "text",
    [
        "whatever",
        "set a",
        "add a",
        "delete a",
        "set a=set",
        "remove a = b",
        "add a = b",
        "delete a b",
        "delete a if_not_exist(b)",
        "add abort b",
        "remove a b",
        "set a b",
        "set :a = b",
        "remove :a",
        "set a = b / c",
        'set a[1] = "eight"',
        "set a[1] = 1",
        "SET a = if_not_exist(a, 100)",
        "SET if_not_exist(a, b) = a",
        "set (a = (b + c))",
        "set a = (b.c).d + e",
        "set a = b + c + d",
        "SET c = if_not_exists(c, :v + :v)",
        "SET a[:i] = :v",
        "SET a[#i] = :v",
        "SET # = :v",
        "SET a = :",
    ],
)
def test_malformed_update_expression_is_a_syntax_error(text):
    message = _message(parse_update, text, {":v": Decimal(1), ":a": Decimal(1)})
    assert message.startswith("Invalid UpdateExpression: Syntax error; ")


@pytest.mark.parametrize(
    "text",
    ["things are not gonna be ok", "(size(a))[0] > a", "a IN ()", "NOT", "a BETWEEN :v", "a <"],
)
def test_malformed_condition_is_a_syntax_error(text):
    message = _message(parse_condition, text, {":v": Decimal(1)})
    assert message.startswith("Invalid ConditionExpression: Syntax error; ")


def test_value_placeholder_in_a_projection_is_a_syntax_error():
    assert _message(parse_projection, "a, :v", {":v": Decimal(1)}).startswith(
        'Invalid ProjectionExpression: Syntax error; token: ":v"'
    )


def test_keywords_are_case_insensitive():
    values = {":a": Decimal(1), ":b": Decimal(2)}
    parse_condition("a between :a aNd :b Or NOT b in (:a)", ExpressionContext(None, values))


def test_clause_keywords_are_case_insensitive():
    parse_update("sEt b = :v", ExpressionContext(None, {":v": Decimal(1)}))
