"""What every kind of expression shares: its keywords, and how deep a document path may go.

AND, OR, NOT, BETWEEN, IN, SET, REMOVE, ADD and DELETE are tokens of the
one expression lexer: written where a name belongs, in a projection, a
condition or an update, they are a syntax error (not a reserved word, and
REMOVE, which is no reserved word, is not a name either). Checked side by
side with DynamoDB Local, whose messages these are.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import ExpressionContext, parse_condition, parse_projection, parse_update

VALUES = {":v": Decimal(1)}


def _error(parse: object, text: str) -> str:
    with pytest.raises(ValidationException) as caught:
        parse(text)  # type: ignore[operator]
    return caught.value.message


def _projection(text: str) -> object:
    return parse_projection(text, ExpressionContext(None, None))


def _condition(text: str) -> object:
    return parse_condition(text, ExpressionContext(None, VALUES), "ConditionExpression")


def _update(text: str) -> object:
    return parse_update(text, ExpressionContext(None, VALUES))


KEYWORDS = ["AND", "or", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "remove", "ADD", "DELETE"]


@pytest.mark.parametrize("word", KEYWORDS)
def test_a_keyword_as_a_projected_name_is_a_syntax_error(word: str) -> None:
    assert _error(_projection, word) == (
        f'Invalid ProjectionExpression: Syntax error; token: "{word}", near: "{word}"')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("REMOVE = :v", 'Syntax error; token: "REMOVE", near: "REMOVE ="'),
        ("a.REMOVE = :v", 'Syntax error; token: "REMOVE", near: ".REMOVE ="'),
        ("attribute_exists(REMOVE)", 'Syntax error; token: "REMOVE", near: "(REMOVE)"'),
        ("SET = :v", 'Syntax error; token: "SET", near: "SET ="'),
    ],
)
def test_a_keyword_as_a_name_in_a_condition_is_a_syntax_error(text: str, message: str) -> None:
    assert _error(_condition, text) == f"Invalid ConditionExpression: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SET AND = :v", 'Syntax error; token: "AND", near: "SET AND ="'),
        ("SET a = NOT", 'Syntax error; token: "NOT", near: "= NOT"'),
        ("REMOVE a.BETWEEN", 'Syntax error; token: "BETWEEN", near: ".BETWEEN"'),
    ],
)
def test_a_keyword_as_a_name_in_an_update_is_a_syntax_error(text: str, message: str) -> None:
    assert _error(_update, text) == f"Invalid UpdateExpression: {message}"


def test_a_reserved_word_that_is_no_keyword_stays_a_reserved_word() -> None:
    assert _error(_projection, "name") == (
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name")


def test_a_document_path_of_33_levels_is_refused_in_every_kind() -> None:
    deep = ".".join(["m"] * 33)
    levels = "The document path has too many nesting levels; nesting levels: 33"
    assert _error(_projection, deep) == f"Invalid ProjectionExpression: {levels}"
    assert _error(_projection, "l" + "[0]" * 32) == f"Invalid ProjectionExpression: {levels}"
    assert _error(_condition, f"{deep} = :v") == f"Invalid ConditionExpression: {levels}"
    assert _error(_update, f"SET {deep} = :v") == f"Invalid UpdateExpression: {levels}"
    _projection(".".join(["m"] * 32))  # 32 levels are fine
    # An undefined name outranks it, as a reserved word does.
    assert "not defined" in _error(_projection, f"{deep}, #u")
