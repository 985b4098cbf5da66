"""ProjectionExpression and AttributesToGet: parsing, validation, projecting."""

from __future__ import annotations

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import (
    ExpressionContext,
    attributes_to_get_to_projection,
    parse_projection,
    project,
)
from tablekeeper.engine.expressions.ast import Path

PREFIX = "Invalid ProjectionExpression: "
ITEM = {
    "pk": "p",
    "a": {"b": 1, "c": 2},
    "letters": ["x", "y", "z"],
    "alt": "o",
    "deep": [{"m": 1, "n": 2}, {"m": 3, "n": 4}],
}


def _project(text: str, names: dict | None = None, item: dict = ITEM) -> dict:
    return project(parse_projection(text, ExpressionContext(names, None)), item)


def _error(text: str, names: dict | None = None) -> str:
    with pytest.raises(ValidationException) as caught:
        parse_projection(text, ExpressionContext(names, None))
    return caught.value.message


def test_top_level_attributes_are_selected():
    assert _project("pk, alt") == {"pk": "p", "alt": "o"}


def test_nested_map_member_keeps_its_structure():
    assert _project("a.c") == {"a": {"c": 2}}


def test_list_elements_are_compacted_in_index_order():
    assert _project("letters[2], letters[0]") == {"letters": ["x", "z"]}


def test_members_of_list_elements_keep_structure():
    assert _project("deep[1].n, deep[0].m") == {"deep": [{"m": 1}, {"n": 4}]}


def test_paths_that_do_not_resolve_are_left_out():
    assert _project("nope, a.zzz, letters[9], alt.x") == {}


def test_names_come_from_placeholders():
    assert _project("#o", {"#o": "alt"}) == {"alt": "o"}


def test_whole_values_are_returned_unchanged():
    assert _project("a")["a"] is ITEM["a"]


def test_top_level_names_of_a_projection():
    assert parse_projection("a.b, c[1]", ExpressionContext(None, None)).top_level_names() == {
        "a",
        "c",
    }


def test_reserved_word_is_refused():
    assert (
        _error("pk, name")
        == PREFIX + "Attribute name is a reserved keyword; reserved keyword: name"
    )


def test_undefined_name_is_refused():
    assert _error("#x") == (
        PREFIX + "An expression attribute name used in the document path is not defined; "
        "attribute name: #x"
    )


def test_duplicate_paths_overlap():
    assert _error("a, a") == (
        PREFIX + "Two document paths overlap with each other; must remove or rewrite one of these "
        "paths; path one: [a], path two: [a]"
    )


def test_path_inside_another_overlaps():
    assert _error("a.b, a").endswith("path one: [a, b], path two: [a]")


def test_map_and_list_access_conflict():
    assert _error("a.b, a[0]").startswith(PREFIX + "Two document paths conflict with each other")


def test_attributes_to_get_are_literal_top_level_names():
    projection = attributes_to_get_to_projection(["a.b", "c"])
    assert projection.paths == (Path(("a.b",)), Path(("c",)))


def test_attributes_to_get_refuses_duplicates():
    with pytest.raises(ValidationException) as caught:
        attributes_to_get_to_projection(["a", "b", "a"])
    assert caught.value.message == (
        "One or more parameter values were invalid: Duplicate value in attribute name: a"
    )


@pytest.mark.parametrize("index", ["2147483648", "99999999999", "00000000001"])
def test_a_list_index_past_32_bits_is_refused(index: str) -> None:
    assert _error(f"letters[{index}]") == (
        PREFIX + f"List index is not within the allowable range; index: [{index}]")


def test_the_largest_list_index_is_accepted() -> None:
    assert _project("letters[2147483647]") == {}


def test_an_expression_over_4_kb_is_refused_with_its_size() -> None:
    text = ", ".join(["letters"] * 600)  # 5,398 bytes
    assert _error(text) == (
        PREFIX + f"Expression size has exceeded the maximum allowed size; expression size: {len(text)}")


def test_an_expression_of_exactly_4_kb_is_parsed() -> None:
    text = "a" + "b" * 4095
    assert _project(text) == {}
