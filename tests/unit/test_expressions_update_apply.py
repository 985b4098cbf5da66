"""Applying updates: DynamoDB's runtime semantics and runtime error wording."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.expressions import (
    ExpressionContext,
    apply_update,
    attribute_updates_to_plan,
    parse_update,
)

D = Decimal
INVALID_PATH = "The document path provided in the update expression is invalid for update"
MISSING_OPERAND = "The provided expression refers to an attribute that does not exist in the item"
WRONG_TYPE = "An operand in the update expression has an incorrect data type"


def _apply(text: str, item: dict, values: dict | None = None, names: dict | None = None, **kw):
    return apply_update(parse_update(text, ExpressionContext(names, values)), item, **kw)


def _error(text: str, item: dict, values: dict | None = None, **kw) -> str:
    with pytest.raises(ValidationException) as caught:
        _apply(text, item, values, **kw)
    return caught.value.message


def test_set_creates_and_replaces_top_level_attributes():
    assert _apply("SET a = :v, b = :v", {"a": "old"}, {":v": D(4)}) == {"a": D(4), "b": D(4)}


def test_input_item_is_not_modified():
    item = {"a": {"b": [D(1), D(2)]}, "s": frozenset({"x"})}
    before = copy.deepcopy(item)
    _apply("SET a.b[0] = :v REMOVE a.b[1] ADD s :s", item, {":v": D(9), ":s": frozenset({"y"})})
    assert item == before


def test_unchanged_subtrees_are_shared_not_copied():
    item = {"a": {"x": D(1)}, "big": {"y": D(2)}}
    assert _apply("SET a.x = :v", item, {":v": D(3)})["big"] is item["big"]


def test_operands_are_read_from_the_item_before_the_update():
    assert _apply("SET a = b, b = a", {"a": D(1), "b": D(2)}) == {"a": D(2), "b": D(1)}


def test_reading_an_attribute_set_by_the_same_update_fails():
    assert _error("SET x = :v, y = x", {}, {":v": D(4)}) == MISSING_OPERAND


def test_copying_a_missing_attribute_fails():
    assert _error("SET c = b", {"a": "key"}) == MISSING_OPERAND


def test_if_not_exists_keeps_an_existing_value():
    assert _apply("SET a = if_not_exists(a, :v)", {"a": D(2)}, {":v": D(3)}) == {"a": D(2)}


def test_if_not_exists_falls_back_to_its_default():
    assert _apply("SET b = if_not_exists(c, :v)", {}, {":v": D(4)}) == {"b": D(4)}


def test_plus_and_minus_are_exact_decimal_arithmetic():
    item = {"f": D("0.1"), "n": D(1)}
    result = _apply("SET f = f + :f, n = n - :one", item, {":f": D("0.2"), ":one": D(1)})
    assert result == {"f": D("0.3"), "n": D(0)}


def test_arithmetic_overflow_uses_the_number_range_message():
    assert _error("SET a = a + :v", {"a": D("9e125")}, {":v": D("9e125")}) == (
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )


def test_arithmetic_on_a_string_attribute_is_a_type_error():
    assert _error("SET a = a + :v", {"a": "x"}, {":v": D(1)}) == WRONG_TYPE


def test_list_append_concatenates_in_order():
    result = _apply("SET a = list_append(:h, a)", {"a": [D(1)]}, {":h": [D(0)]})
    assert result == {"a": [D(0), D(1)]}


def test_list_append_on_a_non_list_is_a_type_error():
    assert _error("SET a = list_append(a, :v)", {"a": frozenset({"x"})}, {":v": []}) == WRONG_TYPE


def test_set_nested_map_member():
    result = _apply("SET a.c = :v", {"a": {"b": D(3)}}, {":v": D(7)})
    assert result == {"a": {"b": D(3), "c": D(7)}}


def test_set_list_element_replaces_it():
    result = _apply("SET a[1] = :v", {"a": ["one", "two", "three"]}, {":v": "hello"})
    assert result == {"a": ["one", "hello", "three"]}


def test_set_past_the_end_of_a_list_appends():
    result = _apply("SET a[7] = :v", {"a": ["one"]}, {":v": "hello"})
    assert result == {"a": ["one", "hello"]}


def test_several_appends_land_in_index_order():
    values = {":a": "a1", ":b": "a2", ":c": "a3", ":d": "a4"}
    result = _apply("SET a[84] = :a, a[37] = :b, a[17] = :c, a[50] = :d", {"a": ["x"]}, values)
    assert result == {"a": ["x", "a3", "a2", "a4", "a1"]}


@pytest.mark.parametrize("text", ["SET a.c = :v", "SET b.c = :v", "SET c.c = :v", "SET a[0] = :v"])
def test_set_below_a_missing_or_scalar_parent_is_an_invalid_path(text):
    assert _error(text, {"a": "hello", "b": ["hi"]}, {":v": D(7)}) == INVALID_PATH


def test_set_nested_on_a_new_item_is_an_invalid_path():
    assert _error("SET b.a = :v", {"a": "key"}, {":v": D(1)}, exists=False) == INVALID_PATH


def test_remove_top_level_attribute():
    assert _apply("REMOVE a", {"a": "x", "b": "y"}) == {"b": "y"}


def test_remove_of_a_missing_leaf_is_ignored():
    item = {"a": {"x": D(3)}, "b": ["hi"]}
    assert _apply("REMOVE a.y, b[7], c", item) == item


@pytest.mark.parametrize("text", ["REMOVE a.c", "REMOVE b.c", "REMOVE c.c", "REMOVE a[0]"])
def test_remove_below_a_missing_or_scalar_parent_is_an_invalid_path(text):
    assert _error(text, {"a": "hello", "b": ["hi"]}) == INVALID_PATH


@pytest.mark.parametrize("text", ["REMOVE x.y", "REMOVE x[0]"])
def test_nested_remove_on_an_item_that_does_not_exist_is_ignored(text):
    assert _apply(text, {"p": "key"}, exists=False) == {"p": "key"}


def test_remove_list_elements_by_original_position():
    assert _apply("REMOVE a[1], a[3]", {"a": [0, 1, 2, 3, 4]}) == {"a": [0, 2, 4]}


@pytest.mark.parametrize("text", ["REMOVE a[1] SET a[3] = :v", "SET a[3] = :v REMOVE a[1]"])
def test_positions_refer_to_the_list_before_removals(text):
    result = _apply(text, {"a": [2, 3, 4, 5, 6, 7]}, {":v": 17})
    assert result == {"a": [2, 4, 17, 6, 7]}


def test_remove_nested_inside_list_elements():
    item = {"a": {"b": 3, "c": ["hi", {"x": {"y": [3, 5, 7]}, "q": 2}]}}
    result = _apply("REMOVE a.c[1].x.y[1], a.c[1].q", item)
    assert result == {"a": {"b": 3, "c": ["hi", {"x": {"y": [3, 7]}}]}}


def test_removing_the_last_member_leaves_an_empty_map():
    assert _apply("REMOVE a.b", {"a": {"b": 1}}) == {"a": {}}


def test_add_creates_a_missing_number():
    assert _apply("ADD b :v", {}, {":v": D(8)}) == {"b": D(8)}


def test_add_sums_numbers():
    assert _apply("ADD a :v", {"a": D(3)}, {":v": D(4)}) == {"a": D(7)}


def test_add_unions_sets():
    result = _apply("ADD a :v", {"a": frozenset({"x", "y"})}, {":v": frozenset({"y", "z"})})
    assert result == {"a": frozenset({"x", "y", "z"})}


def test_add_of_a_different_set_type_is_a_type_error():
    item = {"d": frozenset({D(1)})}
    assert _error("ADD d :v", item, {":v": frozenset({"1"})}) == WRONG_TYPE


def test_add_a_number_to_a_string_is_a_type_error():
    assert _error("ADD b :v", {"b": "hi"}, {":v": D(1)}) == WRONG_TYPE


def test_add_past_the_end_of_a_list_appends():
    assert _apply("ADD c[6] :v", {"c": [D(1)]}, {":v": D(2)}) == {"c": [D(1), D(2)]}


def test_add_below_a_missing_parent_is_an_invalid_path():
    assert _error("ADD y.a :v", {}, {":v": frozenset({"a"})}) == INVALID_PATH


def test_delete_removes_set_members():
    result = _apply("DELETE a :v", {"a": frozenset({"a", "b", "c"})}, {":v": frozenset({"b", "x"})})
    assert result == {"a": frozenset({"a", "c"})}


def test_delete_of_every_member_removes_the_attribute():
    assert _apply("DELETE a :v", {"a": frozenset({"dog"})}, {":v": frozenset({"dog"})}) == {}


def test_delete_from_a_missing_attribute_does_nothing():
    assert _apply("DELETE a :v", {"b": "hi"}, {":v": frozenset({"dog"})}) == {"b": "hi"}


@pytest.mark.parametrize(
    "current",
    [frozenset({D(1)}), {"a": frozenset({"1"})}, D(1), "1"],
    ids=["number-set", "map", "number", "string"],
)
def test_delete_from_a_non_matching_type_is_a_type_error(current):
    assert _error("DELETE d :v", {"d": current}, {":v": frozenset({"1"})}) == WRONG_TYPE


def test_delete_emptying_a_list_element_set_removes_the_element():
    item = {"a": [frozenset({"x"}), "keep"]}
    assert _apply("DELETE a[0] :v", item, {":v": frozenset({"x"})}) == {"a": ["keep"]}


def test_nested_update_reads_old_values_and_sorts_appends():
    item = {"a": "key", "b": {"a": D(1), "b": D(2), "c": D(3)}, "c": [D(1), D(3)]}
    text = (
        "set b.c=((c[1])+(b.a)),b.a = a,c[1] = a, c[4] = b.a - b.b, c[2] = b.c add c[8] :b, c[6] :a"
    )
    result = _apply(text, item, {":a": D(2), ":b": frozenset({"a"})})
    assert result == {
        "a": "key",
        "b": {"a": "key", "b": D(2), "c": D(4)},
        "c": [D(1), "key", D(3), D(-1), D(2), frozenset({"a"})],
    }


def test_failed_update_writes_nothing():
    item = {"a": D(1), "s": "x"}
    with pytest.raises(ValidationException):
        _apply("SET a = :v, b = s + :v", item, {":v": D(2)})
    assert item == {"a": D(1), "s": "x"}


# --- AttributeUpdates (legacy) ----------------------------------------------------


def _legacy(updates: dict, item: dict) -> dict:
    return apply_update(attribute_updates_to_plan(updates, {"id"}), item)


def test_legacy_put_replaces_the_value():
    assert _legacy({"b": {"Value": {"S": "b"}}}, {"b": "a"}) == {"b": "b"}


def test_legacy_action_defaults_to_put():
    assert _legacy({"b": {"Action": "PUT", "Value": {"N": "1"}}}, {}) == {"b": D(1)}


def test_legacy_delete_without_value_removes_the_attribute():
    assert _legacy({"b": {"Action": "DELETE"}}, {"b": "a", "c": "a"}) == {"c": "a"}


def test_legacy_add_appends_lists():
    item = {"b": ["a", D(1)]}
    result = _legacy({"b": {"Action": "ADD", "Value": {"L": [{"S": "b"}]}}}, item)
    assert result == {"b": ["a", D(1), "b"]}


def test_legacy_type_mismatch_has_its_own_wording():
    with pytest.raises(ValidationException) as caught:
        _legacy({"b": {"Action": "DELETE", "Value": {"NS": ["1"]}}}, {"b": frozenset({"1"})})
    assert caught.value.message == "Type mismatch for attribute to update"


def test_legacy_add_of_a_number_to_a_number_set_mismatches():
    with pytest.raises(ValidationException) as caught:
        _legacy({"d": {"Action": "ADD", "Value": {"N": "1"}}}, {"d": frozenset({D(1)})})
    assert caught.value.message == "Type mismatch for attribute to update"
