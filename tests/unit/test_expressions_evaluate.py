"""Evaluating conditions: DynamoDB's comparison rules, never an error at runtime."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tablekeeper.engine.expressions import ExpressionContext, evaluate, parse_condition

D = Decimal
ITEM = {
    "n": D(10),
    "s": "banana",
    "b": b"\x01\x02\x03",
    "flag": True,
    "nothing": None,
    "tags": frozenset({"red", "green"}),
    "nums": frozenset({D(1), D(5)}),
    "letters": ["a", "b", D(3), frozenset({"x"}), [D(1)]],
    "info": {"nested": {"deep": "x"}, "arr": [{"v": D(1)}, {"v": D(2)}]},
    "emoji": "\U0001f600",
    "dotted.name": "yes",
}


def _holds(text: str, values: dict | None = None, names: dict | None = None, item=ITEM) -> bool:
    return evaluate(parse_condition(text, ExpressionContext(names, values)), item)


def test_numbers_compare_numerically():
    assert _holds("n > :v", {":v": D(9)}) and _holds("n < :v", {":v": D(100)})


def test_strings_compare_by_utf8_bytes():
    # U+1F600 sorts after U+FFFD by UTF-8 bytes (UTF-16 would sort it before).
    assert _holds("emoji > :v", {":v": "\ufffd"})


def test_binaries_compare_as_unsigned_bytes():
    assert _holds("b < :v", {":v": b"\xff"})


def test_equality_between_different_types_is_false():
    assert not _holds("n = :v", {":v": "10"})


def test_order_between_different_types_is_false_not_an_error():
    assert not _holds("s > :v", {":v": D(1)})


def test_ordering_an_unorderable_attribute_is_false():
    assert not _holds("letters < :v", {":v": D(1)})


def test_equality_with_a_missing_attribute_is_false():
    assert not _holds("absent = :v", {":v": D(1)})


def test_two_missing_attributes_are_not_equal():
    assert not _holds("q = z")


def test_missing_attribute_is_not_equal_to_anything():
    assert _holds("absent <> :v", {":v": D(1)}) and _holds("q <> z")


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_ordering_with_a_missing_attribute_is_false(op):
    assert not _holds(f"q {op} z")


def test_set_equality_ignores_order():
    assert _holds("tags = :v", {":v": frozenset({"green", "red"})})


def test_nested_document_equality_is_deep():
    assert _holds("info = :v", {":v": {"nested": {"deep": "x"}, "arr": [{"v": D(1)}, {"v": D(2)}]}})


def test_boolean_does_not_equal_one():
    assert not _holds("flag = :v", {":v": D(1)})


def test_between_is_inclusive():
    assert _holds("n BETWEEN :a AND :b", {":a": D(10), ":b": D(20)})
    assert not _holds("n BETWEEN :a AND :b", {":a": D(11), ":b": D(20)})


def test_between_with_a_missing_attribute_is_false():
    assert not _holds("q BETWEEN z AND x")


def test_in_matches_any_equal_option():
    assert _holds("s IN (:a, :b)", {":a": "apple", ":b": "banana"})


def test_in_does_not_look_inside_sets():
    assert not _holds("nums IN (:v)", {":v": D(1)})


def test_attribute_exists_counts_null_as_present():
    assert _holds("attribute_exists(nothing) AND attribute_not_exists(absent)")


def test_attribute_exists_on_a_nested_path():
    assert _holds("attribute_exists(info.arr[1].v) AND attribute_not_exists(letters[9])")


@pytest.mark.parametrize(
    "name, type_name",
    [
        ("tags", "SS"),
        ("nums", "NS"),
        ("nothing", "NULL"),
        ("flag", "BOOL"),
        ("info", "M"),
        ("letters", "L"),
        ("b", "B"),
        ("s", "S"),
        ("n", "N"),
    ],
)
def test_attribute_type_matches_the_stored_type(name, type_name):
    assert _holds(f"attribute_type({name}, :t)", {":t": type_name})


def test_attribute_type_of_a_missing_attribute_is_false():
    assert not _holds("attribute_type(absent, :t)", {":t": "S"})


def test_begins_with_on_strings_and_binaries():
    assert _holds("begins_with(s, :p)", {":p": "ban"})
    assert _holds("begins_with(b, :p)", {":p": b"\x01\x02"})


def test_begins_with_on_a_number_attribute_is_false():
    assert not _holds("begins_with(n, :p)", {":p": "1"})


def test_contains_finds_a_substring():
    assert _holds("contains(s, :v)", {":v": "nan"})


def test_contains_finds_a_binary_subsequence():
    assert _holds("contains(b, :v)", {":v": b"\x02\x03"})


def test_contains_finds_a_set_member():
    assert _holds("contains(tags, :v)", {":v": "red"})
    assert not _holds("contains(tags, :v)", {":v": "blue"})


def test_contains_needs_the_member_type_of_the_set():
    assert not _holds("contains(nums, :v)", {":v": True})


@pytest.mark.parametrize("value", [D(3), frozenset({"x"}), [D(1)]], ids=["scalar", "set", "list"])
def test_contains_finds_an_equal_list_element(value):
    assert _holds("contains(letters, :v)", {":v": value})


@pytest.mark.parametrize(
    "name, size",
    [("s", 6), ("b", 3), ("tags", 2), ("letters", 5), ("info", 2), ("emoji", 1)],
)
def test_size_counts_characters_bytes_and_members(name, size):
    assert _holds(f"size({name}) = :v", {":v": D(size)})


@pytest.mark.parametrize("name", ["n", "flag", "nothing", "absent"])
def test_size_of_a_number_boolean_null_or_missing_compares_false(name):
    assert not _holds(f"size({name}) >= :v", {":v": D(0)})


def test_size_compared_with_a_non_number_is_false():
    assert not _holds("size(s) = :v", {":v": "6"})


def test_placeholder_name_may_contain_a_dot():
    assert _holds("#d = :y", {":y": "yes"}, {"#d": "dotted.name"})


def test_no_item_means_every_attribute_is_absent():
    assert _holds("attribute_not_exists(pk)", item=None)
    assert not _holds("attribute_exists(pk)", item=None)


def test_absent_condition_always_holds():
    assert evaluate(None, ITEM)


def test_not_and_or_combine():
    values = {":yes": D(10), ":no": D(11)}
    assert _holds("n = :yes OR n = :yes AND n = :no", values)
    assert not _holds("(n = :yes OR n = :yes) AND n = :no", values)
    assert _holds("NOT n = :no AND n = :yes", values)
