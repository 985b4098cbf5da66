"""The shortcut for plain PutItem and GetItem bodies parses exactly as the full parse does.

A body of just ``TableName`` and ``Item`` (or ``Key``) skips the generic member
checks (``shapes.plain_request``); whatever such a body holds, the request or the
error must be the one the full parse gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tablekeeper.engine.errors import DynamoDBError
from tablekeeper.engine.operations.items import (
    _parse_get_item_members,
    _parse_put_item_members,
    parse_get_item,
    parse_put_item,
)
from tablekeeper.engine.shapes import plain_request

_names = st.one_of(
    st.sampled_from(["tbl", "ab", "a" * 255, "a" * 256, "bad name", "arn:aws:dynamodb:x:1:table/t",
                     "arn:" + "x" * 1030, "t.b-c_d", ""]),
    st.text(max_size=8), st.integers(), st.none(), st.lists(st.text(max_size=2), max_size=1),
)
_values = st.one_of(
    st.fixed_dictionaries({"S": st.one_of(st.text(max_size=5), st.integers())}),
    st.fixed_dictionaries({"N": st.sampled_from(["1", "1.50", "-0", "1e400", "x", "00"])}),
    st.fixed_dictionaries({"B": st.sampled_from(["QUJD", "QUJ", "!!"])}),
    st.fixed_dictionaries({"SS": st.lists(st.text(max_size=2), max_size=2)}),
    st.fixed_dictionaries({"NULL": st.sampled_from([True, False, 1])}),
    st.dictionaries(st.sampled_from(["S", "N", "X"]), st.just("1"), max_size=2),
    st.text(max_size=2),
)
_maps = st.one_of(st.dictionaries(st.sampled_from(["pk", "sk", "a", ""]), _values, max_size=3),
                  st.lists(st.integers(), max_size=1), st.text(max_size=2), st.none())


def _outcome(parse: Callable[[dict[str, Any]], Any], body: dict[str, Any]) -> Any:
    try:
        return parse(body)
    except DynamoDBError as error:
        return (type(error), error.body())


@settings(max_examples=400, deadline=None)
@given(name=_names, item=_maps)
def test_a_plain_put_item_parses_as_the_full_parse_does(name: Any, item: Any) -> None:
    body = {"TableName": name, "Item": item}
    assert _outcome(parse_put_item, body) == _outcome(_parse_put_item_members, body)


@settings(max_examples=400, deadline=None)
@given(name=_names, key=_maps)
def test_a_plain_get_item_parses_as_the_full_parse_does(name: Any, key: Any) -> None:
    body = {"TableName": name, "Key": key}
    assert _outcome(parse_get_item, body) == _outcome(_parse_get_item_members, body)


def test_a_body_with_any_other_member_is_not_plain() -> None:
    body = {"TableName": "tbl", "Item": {}, "ReturnValues": "NONE"}
    assert plain_request(body, "Item") is None


def test_a_body_with_a_valid_name_and_a_map_is_plain() -> None:
    assert plain_request({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, "Key") == (
        "tbl", {"pk": {"S": "a"}})


def test_a_body_whose_table_name_breaks_a_constraint_is_not_plain() -> None:
    assert plain_request({"TableName": "ab", "Item": {}}, "Item") is None
