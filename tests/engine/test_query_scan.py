"""Query and Scan against a real engine, DynamoDB-exact.

Expected messages are DynamoDB's own, as recorded by suites that were run
against the service (dynalite's, ScyllaDB Alternator's, moto's
``aws_verified`` tests).  Data is written with BatchWriteItem; ``raw`` skips
botocore's client-side checks so the engine sees what a careless client sends.
A few pure tests at the end pin the range arithmetic the engine relies on.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from tablekeeper.engine.engine import dump_item
from tablekeeper.engine.keys import KeyAttribute, KeySchema, encode_scalar
from tablekeeper.engine.operations.query import (
    KeyRange,
    ReadSpec,
    open_prefix,
    read_page,
    stored_item_size,
    successor,
)
from tablekeeper.engine.values import check_number, decode_item, item_size
from tests.conftest import EngineProcess, create_table, unique_name

Wire = dict[str, Any]
Client = Any

START_INVALID = "The provided starting key is invalid"
KEY_MISMATCH = "The provided key element does not match the schema"
ENVELOPE = "1 validation error detected: "
MB = 1024 * 1024


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw(engine: EngineProcess) -> Client:
    """A client that sends whatever it is given (no botocore parameter validation)."""
    return engine.client(config=Config(parameter_validation=False, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def strings(ddb: Client) -> str:
    """Hash pk (S), range sk (S)."""
    return create_table(ddb, unique_name("qs-s"), range_key="sk")


@pytest.fixture(scope="module")
def numbers(ddb: Client) -> str:
    """Hash pk (S), range sk (N)."""
    return create_table(ddb, unique_name("qs-n"), range_key="sk", range_type="N")


@pytest.fixture(scope="module")
def binaries(ddb: Client) -> str:
    """Hash pk (S), range sk (B)."""
    return create_table(ddb, unique_name("qs-b"), range_key="sk", range_type="B")


@pytest.fixture(scope="module")
def hashed(ddb: Client) -> str:
    """Hash pk (S) only."""
    return create_table(ddb, unique_name("qs-h"))


@pytest.fixture(scope="module")
def ten(ddb: Client, numbers: str) -> str:
    """Partition "ten" holds sk 0..9 with odd/even flags; its neighbours hold decoys."""
    items = [{"pk": S("ten"), "sk": N(i), "odd": {"BOOL": i % 2 == 1}} for i in range(10)]
    decoys = [{"pk": S(pk), "sk": N(i)} for pk in ("te", "tenn", "ten\x00") for i in range(3)]
    put_all(ddb, numbers, items + decoys)
    return "ten"


@pytest.fixture(scope="module")
def spread(ddb: Client) -> tuple[str, list[Wire]]:
    """A table of 60 items over 20 partitions, for Scan."""
    table = create_table(ddb, unique_name("qs-scan"), range_key="sk", range_type="N")
    items = [
        {"pk": S(f"p{p}"), "sk": N(i), "v": N(p * 10 + i)} for p in range(20) for i in range(3)
    ]
    put_all(ddb, table, items)
    return table, items


def S(text: str) -> Wire:
    return {"S": text}


def N(number: object) -> Wire:
    return {"N": str(number)}


def B(data: bytes) -> Wire:
    return {"B": data}


def put_all(ddb: Client, table: str, items: list[Wire]) -> None:
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        response = ddb.batch_write_item(RequestItems={table: requests})
        assert not response.get("UnprocessedItems")


def query(ddb: Client, table: str, pk: str, cond: str = "", **kwargs: Any) -> Wire:
    """Query partition ``pk``; ``cond`` adds a sort-key condition over values in kwargs."""
    values = {":pk": S(pk), **kwargs.pop("values", {})}
    text = "pk = :pk" + (f" AND {cond}" if cond else "")
    return ddb.query(  # type: ignore[no-any-return]
        TableName=table, KeyConditionExpression=text, ExpressionAttributeValues=values, **kwargs
    )


def sort_keys(response: Wire) -> list[Any]:
    found = []
    for item in response["Items"]:
        ((tag, value),) = item["sk"].items()
        found.append(Decimal(value) if tag == "N" else value)
    return found


def all_pages(call: Callable[..., Wire], **kwargs: Any) -> Iterator[Wire]:
    while True:
        page = call(**kwargs)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def error_of(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def invalid(message: str) -> tuple[str, str]:
    return "ValidationException", message


# --- sort order --------------------------------------------------------------------------------


def test_string_sort_keys_come_back_in_utf8_byte_order(ddb: Client, strings: str) -> None:
    keys = [
        "b",
        "a",
        "ab",
        "a\x00",
        "a\x00b",
        "a\x00\x00",
        "a\x01",
        "\x00",
        "é",
        "€",
        "\uffff",
        "\U0001d11e",
        "Z",
        "~",
    ]
    put_all(ddb, strings, [{"pk": S("order"), "sk": S(k)} for k in keys])
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert sort_keys(query(ddb, strings, "order")) == expected


def test_number_sort_keys_come_back_in_numeric_order(ddb: Client, numbers: str) -> None:
    keys = [
        "-1E+125",
        "-10",
        "-9.99",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "0.001",
        "0.5",
        "1",
        "1.5",
        "2",
        "9.9",
        "10",
        "100",
        "1E+125",
        "12345678901234567890123456789012345678",
        "-12345678901234567890123456789012345678",
    ]
    put_all(ddb, numbers, [{"pk": S("order"), "sk": N(k)} for k in keys])
    assert sort_keys(query(ddb, numbers, "order")) == sorted(Decimal(k) for k in keys)


def test_binary_sort_keys_come_back_in_unsigned_byte_order(ddb: Client, binaries: str) -> None:
    keys = [
        b"\xff\xff",
        b"\x00",
        b"\x80",
        b"\x7f",
        b"\x00\x01",
        b"\xff",
        b"\x01",
        b"\x00\x00",
        b"\xff\x00",
    ]
    put_all(ddb, binaries, [{"pk": S("order"), "sk": B(k)} for k in keys])
    assert sort_keys(query(ddb, binaries, "order")) == sorted(keys)


def test_scan_index_forward_false_reads_the_partition_backwards(
    ddb: Client, numbers: str, ten: str
) -> None:
    assert sort_keys(query(ddb, numbers, ten, ScanIndexForward=False)) == list(range(9, -1, -1))


def test_query_returns_items_exactly_as_stored(ddb: Client, strings: str) -> None:
    item = {
        "pk": S("exact"),
        "sk": S("1"),
        "n": N("1000"),
        "f": N("-0.25"),
        "b": B(b"\x00\xff"),
        "m": {"M": {"l": {"L": [S("x"), {"NULL": True}, {"BOOL": False}]}}},
        "ss": {"SS": ["b", "a"]},
        "ns": {"NS": ["3", "1"]},
    }
    put_all(ddb, strings, [item])
    got = query(ddb, strings, "exact")["Items"][0]
    assert got["n"] == N("1000") and got["f"] == N("-0.25") and got["b"] == B(b"\x00\xff")
    assert got["m"] == item["m"] and sorted(got["ss"]["SS"]) == ["a", "b"]


def test_query_reads_only_its_own_partition(ddb: Client, numbers: str, ten: str) -> None:
    response = query(ddb, numbers, ten)
    assert sort_keys(response) == list(range(10))
    assert {item["pk"]["S"] for item in response["Items"]} == {"ten"}


def test_query_on_a_hash_only_table_returns_the_one_item(ddb: Client, hashed: str) -> None:
    put_all(ddb, hashed, [{"pk": S("solo"), "v": N(1)}, {"pk": S("solo2"), "v": N(2)}])
    assert query(ddb, hashed, "solo")["Items"] == [{"pk": S("solo"), "v": N(1)}]


def test_query_of_an_empty_partition_returns_nothing(ddb: Client, numbers: str) -> None:
    response = query(ddb, numbers, "nobody")
    assert (response["Items"], response["Count"], response["ScannedCount"]) == ([], 0, 0)
    assert "LastEvaluatedKey" not in response


# --- sort-key conditions: exact at the edges -------------------------------------------


@pytest.mark.parametrize(
    ("cond", "values", "expected"),
    [
        ("sk = :a", {":a": N(5)}, [5]),
        ("sk < :a", {":a": N(5)}, [0, 1, 2, 3, 4]),
        ("sk <= :a", {":a": N(5)}, [0, 1, 2, 3, 4, 5]),
        ("sk > :a", {":a": N(5)}, [6, 7, 8, 9]),
        ("sk >= :a", {":a": N(5)}, [5, 6, 7, 8, 9]),
        ("sk BETWEEN :a AND :b", {":a": N(3), ":b": N(6)}, [3, 4, 5, 6]),
        ("sk BETWEEN :a AND :b", {":a": N(4), ":b": N(4)}, [4]),
        ("sk BETWEEN :a AND :b", {":a": N(-1), ":b": N(0)}, [0]),
        ("sk < :a", {":a": N(0)}, []),
        ("sk > :a", {":a": N(9)}, []),
        ("sk >= :a", {":a": N("8.5")}, [9]),
        (":a < sk", {":a": N(7)}, [8, 9]),
        (":a >= sk", {":a": N(1)}, [0, 1]),
    ],
)
def test_sort_key_condition_selects_exactly_its_range(
    ddb: Client, numbers: str, ten: str, cond: str, values: Wire, expected: list[int]
) -> None:
    assert sort_keys(query(ddb, numbers, ten, cond, values=values)) == expected


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a", ["a", "a\x00", "a\x00\x00", "a\x00b", "a\x01", "ab", "abc", "aÿ"]),
        ("a\x00", ["a\x00", "a\x00\x00", "a\x00b"]),
        ("a\x00\x00", ["a\x00\x00"]),
        ("ab", ["ab", "abc"]),
        ("\x00", ["\x00", "\x00a"]),
        ("ÿ", ["ÿ"]),
        ("abcd", []),
    ],
)
def test_begins_with_on_strings_matches_exactly_the_prefixed_keys(
    ddb: Client, strings: str, prefix: str, expected: list[str]
) -> None:
    keys = [
        "a",
        "a\x00",
        "a\x00b",
        "a\x00\x00",
        "a\x01",
        "ab",
        "abc",
        "aÿ",
        "b",
        "`",
        "\x00",
        "\x00a",
        "ÿ",
        "Ā",
    ]
    put_all(ddb, strings, [{"pk": S("prefix"), "sk": S(k)} for k in keys])
    got = query(ddb, strings, "prefix", "begins_with(sk, :p)", values={":p": S(prefix)})
    assert sort_keys(got) == expected


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"\xff", [b"\xff", b"\xff\x00", b"\xff\xff"]),
        (b"\xff\xff", [b"\xff\xff"]),
        (b"\x00", [b"\x00", b"\x00\x00", b"\x00\xff"]),
        (b"\x00\x00", [b"\x00\x00"]),
        (b"\xfe", [b"\xfe"]),
    ],
)
def test_begins_with_on_binaries_matches_exactly_the_prefixed_keys(
    ddb: Client, binaries: str, prefix: bytes, expected: list[bytes]
) -> None:
    keys = [b"\xff", b"\xff\x00", b"\xff\xff", b"\xfe", b"\x00", b"\x00\xff", b"\x00\x00", b"\x01"]
    put_all(ddb, binaries, [{"pk": S("prefix"), "sk": B(k)} for k in keys])
    got = query(ddb, binaries, "prefix", "begins_with(sk, :p)", values={":p": B(prefix)})
    assert sort_keys(got) == expected


def test_begins_with_reads_backwards_too(ddb: Client, strings: str) -> None:
    put_all(ddb, strings, [{"pk": S("back"), "sk": S(k)} for k in ("x", "xa", "xb", "y")])
    got = query(
        ddb, strings, "back", "begins_with(sk, :p)", values={":p": S("x")}, ScanIndexForward=False
    )
    assert sort_keys(got) == ["xb", "xa", "x"]


def test_legacy_key_conditions_select_the_same_range(ddb: Client, numbers: str, ten: str) -> None:
    response = ddb.query(
        TableName=numbers,
        KeyConditions={
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S(ten)]},
            "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(2), N(4)]},
        },
    )
    assert sort_keys(response) == [2, 3, 4]


# --- Limit, LastEvaluatedKey, ExclusiveStartKey ---------------------------------------


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("limit", [1, 3, 7, 10, 11])
def test_paging_with_limit_reads_exactly_what_one_read_does(
    ddb: Client, numbers: str, ten: str, limit: int, forward: bool
) -> None:
    whole = sort_keys(query(ddb, numbers, ten, ScanIndexForward=forward))
    pages = list(
        all_pages(
            ddb.query,
            TableName=numbers,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": S(ten)},
            Limit=limit,
            ScanIndexForward=forward,
        )
    )
    assert [k for page in pages for k in sort_keys(page)] == whole
    assert all(page["Count"] <= limit for page in pages)


def test_limit_returns_the_key_of_the_last_item_evaluated(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = query(ddb, numbers, ten, Limit=3)
    assert sort_keys(response) == [0, 1, 2]
    assert response["LastEvaluatedKey"] == {"pk": S(ten), "sk": N(2)}


def test_limit_that_reaches_the_last_item_still_returns_a_last_key(
    ddb: Client, numbers: str, ten: str
) -> None:
    first = query(ddb, numbers, ten, Limit=10)
    assert first["Count"] == 10 and first["LastEvaluatedKey"] == {"pk": S(ten), "sk": N(9)}
    rest = query(ddb, numbers, ten, Limit=10, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert (rest["Items"], rest["Count"], "LastEvaluatedKey" in rest) == ([], 0, False)


def test_a_page_that_is_not_full_has_no_last_key(ddb: Client, numbers: str, ten: str) -> None:
    assert "LastEvaluatedKey" not in query(ddb, numbers, ten, Limit=11)


def test_exclusive_start_key_need_not_be_an_existing_item(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = query(ddb, numbers, ten, ExclusiveStartKey={"pk": S(ten), "sk": N("4.5")}, Limit=2)
    assert sort_keys(response) == [5, 6]


def test_exclusive_start_key_in_a_backward_query_continues_backwards(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = query(
        ddb, numbers, ten, ExclusiveStartKey={"pk": S(ten), "sk": N(4)}, ScanIndexForward=False
    )
    assert sort_keys(response) == [3, 2, 1, 0]


def test_exclusive_start_key_on_a_hash_only_table_ends_the_partition(
    ddb: Client, hashed: str
) -> None:
    put_all(ddb, hashed, [{"pk": S("one")}])
    response = query(ddb, hashed, "one", ExclusiveStartKey={"pk": S("one")})
    assert (response["Items"], "LastEvaluatedKey" in response) == ([], False)


def test_scan_paging_with_limit_reads_every_item_once(
    ddb: Client, spread: tuple[str, list[Wire]]
) -> None:
    table, items = spread
    pages = list(all_pages(ddb.scan, TableName=table, Limit=7))
    got = [item for page in pages for item in page["Items"]]
    assert sorted(map(orjson.dumps, got)) == sorted(map(orjson.dumps, items))


def test_scan_returns_each_partition_in_sort_key_order(
    ddb: Client, spread: tuple[str, list[Wire]]
) -> None:
    table, _ = spread
    got = ddb.scan(TableName=table)["Items"]
    by_partition: dict[str, list[int]] = {}
    for item in got:
        by_partition.setdefault(item["pk"]["S"], []).append(int(item["sk"]["N"]))
    assert all(keys == [0, 1, 2] for keys in by_partition.values()) and len(by_partition) == 20


# --- the 1 MB page --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def megabytes(ddb: Client) -> tuple[str, list[int]]:
    """1.6 MB in one partition: 40 items of about 40 KB; returns the table and item sizes."""
    table = create_table(ddb, unique_name("qs-mb"), range_key="sk")
    items = [
        {"pk": S("big"), "sk": S(f"{i:03d}"), "data": S("x" * (40_000 + i))} for i in range(40)
    ]
    put_all(ddb, table, items)
    sizes = [item_size(decode_item(item)) for item in items]
    return table, sizes


def test_query_page_stops_once_a_megabyte_was_read(
    ddb: Client, megabytes: tuple[str, list[int]]
) -> None:
    table, sizes = megabytes
    page = query(ddb, table, "big")
    count = page["Count"]
    assert sum(sizes[: count - 1]) < MB <= sum(sizes[:count])
    assert page["LastEvaluatedKey"] == {"pk": S("big"), "sk": S(f"{count - 1:03d}")}


def test_query_continues_after_a_full_megabyte_page(
    ddb: Client, megabytes: tuple[str, list[int]]
) -> None:
    table, sizes = megabytes
    first = query(ddb, table, "big")
    rest = query(ddb, table, "big", ExclusiveStartKey=first["LastEvaluatedKey"])
    assert first["Count"] + rest["Count"] == len(sizes) and "LastEvaluatedKey" not in rest


def test_scan_page_stops_once_a_megabyte_was_read(
    ddb: Client, megabytes: tuple[str, list[int]]
) -> None:
    table, sizes = megabytes
    first, *rest = all_pages(ddb.scan, TableName=table, Select="COUNT")
    scanned = first["ScannedCount"]
    assert sum(sizes[: scanned - 1]) < MB <= sum(sizes[:scanned])
    assert [page["ScannedCount"] for page in rest] == [len(sizes) - scanned]


def test_filtered_out_items_count_towards_the_megabyte(
    ddb: Client, megabytes: tuple[str, list[int]]
) -> None:
    table, _ = megabytes
    page = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        FilterExpression="attribute_not_exists(#d)",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":pk": S("big")},
    )
    assert page["Count"] == 0 and page["ScannedCount"] < 40 and "LastEvaluatedKey" in page


# --- filters and counts ---------------------------------------------------------------------


def test_filter_applies_after_limit(ddb: Client, numbers: str, ten: str) -> None:
    response = ddb.query(
        TableName=numbers,
        KeyConditionExpression="pk = :pk",
        FilterExpression="odd = :t",
        ExpressionAttributeValues={":pk": S(ten), ":t": {"BOOL": True}},
        Limit=5,
    )
    assert sort_keys(response) == [1, 3]
    assert (response["Count"], response["ScannedCount"]) == (2, 5)


def test_filtered_out_last_item_still_gives_the_last_evaluated_key(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = ddb.query(
        TableName=numbers,
        KeyConditionExpression="pk = :pk",
        FilterExpression="odd = :t",
        ExpressionAttributeValues={":pk": S(ten), ":t": {"BOOL": True}},
        Limit=3,
    )
    assert response["LastEvaluatedKey"] == {"pk": S(ten), "sk": N(2)}


def test_query_filter_legacy_filters_like_an_expression(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = ddb.query(
        TableName=numbers,
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S(ten)]}},
        QueryFilter={"odd": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": False}]}},
    )
    assert sort_keys(response) == [0, 2, 4, 6, 8] and response["ScannedCount"] == 10


def test_scan_filter_counts_matches_and_scanned(
    ddb: Client, spread: tuple[str, list[Wire]]
) -> None:
    table, _ = spread
    response = ddb.scan(
        TableName=table,
        ScanFilter={"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [N(1)]}},
    )
    assert (response["Count"], response["ScannedCount"]) == (20, 60)


def test_scan_filter_expression_may_use_key_attributes(
    ddb: Client, spread: tuple[str, list[Wire]]
) -> None:
    table, _ = spread
    response = ddb.scan(
        TableName=table, FilterExpression="pk = :p", ExpressionAttributeValues={":p": S("p7")}
    )
    assert sorted(int(i["sk"]["N"]) for i in response["Items"]) == [0, 1, 2]


# --- Select and projections ----------------------------------------------------------------


def test_select_count_returns_counts_and_no_items(ddb: Client, numbers: str, ten: str) -> None:
    response = query(ddb, numbers, ten, Select="COUNT")
    assert "Items" not in response and (response["Count"], response["ScannedCount"]) == (10, 10)


def test_select_count_with_limit_still_pages(ddb: Client, numbers: str, ten: str) -> None:
    response = query(ddb, numbers, ten, Select="COUNT", Limit=4)
    assert response["Count"] == 4 and response["LastEvaluatedKey"] == {"pk": S(ten), "sk": N(3)}


def test_projection_returns_only_the_named_attributes(ddb: Client, numbers: str, ten: str) -> None:
    response = query(
        ddb,
        numbers,
        ten,
        "sk = :a",
        values={":a": N(3)},
        ProjectionExpression="odd",
        Select="SPECIFIC_ATTRIBUTES",
    )
    assert response["Items"] == [{"odd": {"BOOL": True}}]


def test_attributes_to_get_returns_only_the_named_attributes(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = ddb.query(
        TableName=numbers,
        AttributesToGet=["sk", "missing"],
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S(ten)]}},
        Limit=2,
    )
    assert response["Items"] == [{"sk": N(0)}, {"sk": N(1)}]


def test_select_all_attributes_returns_whole_items(ddb: Client, numbers: str, ten: str) -> None:
    response = query(ddb, numbers, ten, "sk = :a", values={":a": N(0)}, Select="ALL_ATTRIBUTES")
    assert response["Items"] == [{"pk": S(ten), "sk": N(0), "odd": {"BOOL": False}}]


def query_args(table: str) -> Wire:
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": S("x")},
    }


SELECT_CASES = [
    (
        {"Select": "SPECIFIC_ATTRIBUTES"},
        "Must specify the AttributesToGet or ProjectionExpression when choosing to get "
        "SPECIFIC_ATTRIBUTES",
    ),
    (
        {"Select": "COUNT", "ProjectionExpression": "a"},
        "Cannot specify the ProjectionExpression when choosing to get only the Count",
    ),
    (
        {"Select": "ALL_ATTRIBUTES", "ProjectionExpression": "a"},
        "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES",
    ),
    (
        {"Select": "ALL_PROJECTED_ATTRIBUTES", "ProjectionExpression": "a"},
        "Cannot specify the ProjectionExpression when choosing to get ALL_PROJECTED_ATTRIBUTES",
    ),
    (
        {"Select": "ALL_PROJECTED_ATTRIBUTES"},
        "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
    ),
]


@pytest.mark.parametrize(("extra", "message"), SELECT_CASES)
def test_query_select_rules_are_reported_as_validation_errors(
    raw: Client, numbers: str, extra: Wire, message: str
) -> None:
    assert error_of(raw.query, **query_args(numbers), **extra) == invalid(ENVELOPE + message)


@pytest.mark.parametrize(("extra", "message"), SELECT_CASES)
def test_scan_select_rules_are_reported_bare(
    raw: Client, numbers: str, extra: Wire, message: str
) -> None:
    assert error_of(raw.scan, TableName=numbers, **extra) == invalid(message)


@pytest.mark.parametrize(
    ("select", "chosen"),
    [
        ("COUNT", "only the Count"),
        ("ALL_ATTRIBUTES", "ALL_ATTRIBUTES"),
        ("ALL_PROJECTED_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"),
    ],
)
def test_attributes_to_get_needs_select_specific_attributes(
    raw: Client, numbers: str, select: str, chosen: str
) -> None:
    message = f"Cannot specify the AttributesToGet when choosing to get {chosen}"
    assert error_of(raw.scan, TableName=numbers, Select=select, AttributesToGet=["a"]) == invalid(
        message
    )


def test_select_values_are_case_sensitive(raw: Client, numbers: str) -> None:
    message = (
        ENVELOPE + "Value 'count' at 'select' failed to satisfy constraint: Member must "
        "satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
        "ALL_PROJECTED_ATTRIBUTES]"
    )
    assert error_of(raw.query, **query_args(numbers), Select="count") == invalid(message)


# --- ExclusiveStartKey validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        {},
        {"pk": S("x")},
        {"sk": N(1)},
        {"pk": S("x"), "other": N(1)},
        {"pk": S("x"), "sk": N(1), "extra": N(1)},
    ],
)
def test_query_start_key_with_the_wrong_attributes_is_invalid(
    raw: Client, numbers: str, start: Wire
) -> None:
    assert error_of(raw.query, **query_args(numbers), ExclusiveStartKey=start) == invalid(
        START_INVALID
    )


@pytest.mark.parametrize("start", [{"pk": N(1), "sk": N(1)}, {"pk": S("x"), "sk": S("1")}])
def test_query_start_key_of_the_wrong_type_does_not_match_the_schema(
    raw: Client, numbers: str, start: Wire
) -> None:
    assert error_of(raw.query, **query_args(numbers), ExclusiveStartKey=start) == invalid(
        KEY_MISMATCH
    )


@pytest.mark.parametrize(
    "start", [{}, {"pk": S("x")}, {"pk": S("x"), "other": N(1)}, {"pk": N(1), "sk": N(1)}]
)
def test_scan_start_key_not_matching_the_schema_is_invalid(
    raw: Client, numbers: str, start: Wire
) -> None:
    message = f"{START_INVALID}: {KEY_MISMATCH}"
    assert error_of(raw.scan, TableName=numbers, ExclusiveStartKey=start) == invalid(message)


def test_start_key_with_a_malformed_value_is_invalid(raw: Client, numbers: str) -> None:
    message = (
        f"{START_INVALID}: Supplied AttributeValue is empty, must contain exactly one of "
        "the supported datatypes"
    )
    start = {"pk": {}, "sk": N(1)}
    assert error_of(raw.scan, TableName=numbers, ExclusiveStartKey=start) == invalid(message)


def test_query_start_key_in_another_partition_is_outside_the_query(
    raw: Client, numbers: str
) -> None:
    message = "The provided starting key is outside query boundaries based on provided conditions"
    start = {"pk": S("y"), "sk": N(1)}
    assert error_of(raw.query, **query_args(numbers), ExclusiveStartKey=start) == invalid(message)


def test_query_start_key_outside_the_sort_key_condition_is_rejected(
    raw: Client, numbers: str
) -> None:
    args = query_args(numbers)
    args["KeyConditionExpression"] += " AND sk > :a"
    args["ExpressionAttributeValues"][":a"] = N(5)
    message = "The provided starting key does not match the range key predicate"
    start = {"pk": S("x"), "sk": N(5)}
    assert error_of(raw.query, **args, ExclusiveStartKey=start) == invalid(message)


def test_query_start_key_in_another_partition_with_a_sort_key_condition_cannot_restart(
    raw: Client, numbers: str
) -> None:
    args = query_args(numbers)
    args["KeyConditionExpression"] += " AND sk < :a"
    args["ExpressionAttributeValues"][":a"] = N(5)
    message = "The query can return at most one row and cannot be restarted"
    start = {"pk": S("y"), "sk": N(1)}
    assert error_of(raw.query, **args, ExclusiveStartKey=start) == invalid(message)


# --- key condition and filter validation ----------------------------------------------------


def test_query_needs_a_key_condition(raw: Client, numbers: str) -> None:
    message = (
        "Either the KeyConditions or KeyConditionExpression parameter must be specified "
        "in the request."
    )
    assert error_of(raw.query, TableName=numbers) == invalid(message)


@pytest.mark.parametrize(
    ("cond", "values"),
    [
        ("pk = :pk", {":pk": N(1)}),
        ("pk = :pk AND sk = :a", {":pk": S("x"), ":a": S("1")}),
        ("pk = :pk AND sk BETWEEN :a AND :b", {":pk": S("x"), ":a": S("1"), ":b": S("2")}),
        ("pk = :pk AND begins_with(sk, :a)", {":pk": S("x"), ":a": S("1")}),
    ],
)
def test_key_condition_value_of_the_wrong_type_is_rejected(
    raw: Client, numbers: str, cond: str, values: Wire
) -> None:
    message = (
        "One or more parameter values were invalid: "
        "Condition parameter type does not match schema type"
    )
    got = error_of(
        raw.query, TableName=numbers, KeyConditionExpression=cond, ExpressionAttributeValues=values
    )
    assert got == invalid(message)


@pytest.mark.parametrize("attribute", ["pk", "sk"])
def test_query_filter_expression_may_not_name_a_key_attribute(
    raw: Client, numbers: str, attribute: str
) -> None:
    args = query_args(numbers)
    args["ExpressionAttributeValues"][":v"] = N(1)
    message = (
        "Filter Expression can only contain non-primary key attributes: "
        f"Primary key attribute: {attribute}"
    )
    assert error_of(raw.query, **args, FilterExpression=f"{attribute} = :v") == invalid(message)


def test_legacy_query_filter_may_not_name_a_key_attribute(raw: Client, numbers: str) -> None:
    message = "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk"
    assert error_of(
        raw.query,
        TableName=numbers,
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("x")]}},
        QueryFilter={"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [N(1)]}},
    ) == invalid(message)


@pytest.mark.parametrize("call", ["query", "scan"])
def test_projection_into_a_key_attribute_is_rejected(raw: Client, numbers: str, call: str) -> None:
    message = (
        "Key attributes must be scalars; list random access '[]' and map lookup '.' are "
        "not allowed: Key: pk"
    )
    args = query_args(numbers) if call == "query" else {"TableName": numbers}
    assert error_of(getattr(raw, call), **args, ProjectionExpression="pk.x") == invalid(message)


@pytest.mark.parametrize("call", ["query", "scan"])
def test_limit_below_one_is_rejected(raw: Client, numbers: str, call: str) -> None:
    message = (
        ENVELOPE + "Value '0' at 'limit' failed to satisfy constraint: Member must have "
        "value greater than or equal to 1"
    )
    args = query_args(numbers) if call == "query" else {"TableName": numbers}
    assert error_of(getattr(raw, call), **args, Limit=0) == invalid(message)


@pytest.mark.parametrize("call", ["query", "scan"])
def test_reading_a_missing_table_is_resource_not_found(raw: Client, call: str) -> None:
    args = query_args("nope-" + unique_name()) if call == "query" else {"TableName": unique_name()}
    assert error_of(getattr(raw, call), **args) == (
        "ResourceNotFoundException",
        "Requested resource not found",
    )


@pytest.mark.parametrize("call", ["query", "scan"])
def test_reading_an_index_the_table_does_not_have_is_rejected(
    raw: Client, numbers: str, call: str
) -> None:
    args = query_args(numbers) if call == "query" else {"TableName": numbers}
    message = "The table does not have the specified index: byOther"
    assert error_of(getattr(raw, call), **args, IndexName="byOther") == invalid(message)


def test_scan_of_a_missing_index_with_a_start_key_reports_the_start_key(
    raw: Client, numbers: str
) -> None:
    start = {"pk": S("x"), "sk": N(1)}
    got = error_of(raw.scan, TableName=numbers, IndexName="byOther", ExclusiveStartKey=start)
    assert got == invalid(START_INVALID)


def test_empty_partition_key_value_is_rejected(raw: Client, numbers: str) -> None:
    message = (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk"
    )
    got = error_of(
        raw.query,
        TableName=numbers,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": S("")},
    )
    assert got == invalid(message)


def test_key_condition_must_name_the_partition_key(raw: Client, numbers: str) -> None:
    got = error_of(
        raw.query,
        TableName=numbers,
        KeyConditionExpression="sk = :a",
        ExpressionAttributeValues={":a": N(1)},
    )
    assert got == invalid("Query condition missed key schema element: pk")


def test_placeholder_used_by_no_expression_is_rejected(raw: Client, numbers: str) -> None:
    args = query_args(numbers)
    args["ExpressionAttributeValues"][":unused"] = N(1)
    message = "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"
    assert error_of(raw.query, **args) == invalid(message)


def test_key_condition_expression_with_a_legacy_filter_is_rejected(
    raw: Client, numbers: str
) -> None:
    message = (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {QueryFilter} Expression parameters: {KeyConditionExpression}"
    )
    query_filter = {"v": {"ComparisonOperator": "EQ", "AttributeValueList": [N(1)]}}
    assert error_of(raw.query, **query_args(numbers), QueryFilter=query_filter) == invalid(message)


def test_legacy_key_conditions_may_go_with_a_filter_expression(
    ddb: Client, numbers: str, ten: str
) -> None:
    response = ddb.query(
        TableName=numbers,
        KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S(ten)]}},
        FilterExpression="odd = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    assert sort_keys(response) == [1, 3, 5, 7, 9]


def test_duplicate_attributes_to_get_are_rejected(raw: Client, numbers: str) -> None:
    message = "One or more parameter values were invalid: Duplicate value in attribute name: a"
    assert error_of(raw.scan, TableName=numbers, AttributesToGet=["a", "a"]) == invalid(message)


# --- parallel scan ----------------------------------------------------------------------------


@pytest.mark.parametrize("total", [1, 2, 3, 17, 1000])
def test_parallel_scan_segments_cover_every_item_exactly_once(
    ddb: Client, spread: tuple[str, list[Wire]], total: int
) -> None:
    table, items = spread
    got = [
        item
        for segment in range(total)
        for item in ddb.scan(TableName=table, Segment=segment, TotalSegments=total)["Items"]
    ]
    assert sorted(map(orjson.dumps, got)) == sorted(map(orjson.dumps, items))


def test_parallel_scan_pages_within_its_segment(
    ddb: Client, spread: tuple[str, list[Wire]]
) -> None:
    table, _ = spread
    whole = ddb.scan(TableName=table, Segment=1, TotalSegments=3)["Items"]
    pages = all_pages(ddb.scan, TableName=table, Segment=1, TotalSegments=3, Limit=2)
    assert [item for page in pages for item in page["Items"]] == whole


def test_start_key_from_another_segment_is_invalid(
    ddb: Client, raw: Client, spread: tuple[str, list[Wire]]
) -> None:
    table, _ = spread
    first = ddb.scan(TableName=table, Segment=0, TotalSegments=2, Limit=1)
    message = (
        f"{START_INVALID}: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with "
        "correct Segment. TotalSegments: 2 Segment: 1"
    )
    got = error_of(
        raw.scan,
        TableName=table,
        Segment=1,
        TotalSegments=2,
        ExclusiveStartKey=first["LastEvaluatedKey"],
    )
    assert got == invalid(message)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            {"Segment": 0},
            "The TotalSegments parameter is required but was not present in the "
            "request when Segment parameter is present",
        ),
        (
            {"TotalSegments": 4},
            "The Segment parameter is required but was not present in the "
            "request when parameter TotalSegments is present",
        ),
        (
            {"Segment": 5, "TotalSegments": 5},
            "The Segment parameter is zero-based and must be "
            "less than parameter TotalSegments: Segment: 5 is not less than TotalSegments: 5",
        ),
        (
            {"Segment": 0, "TotalSegments": 0},
            ENVELOPE + "Value '0' at 'totalSegments' failed to "
            "satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            {"Segment": 0, "TotalSegments": 1000001},
            ENVELOPE + "Value '1000001' at 'totalSegments' "
            "failed to satisfy constraint: Member must have value less than or equal to 1000000",
        ),
        (
            {"Segment": -1, "TotalSegments": 2},
            ENVELOPE + "Value '-1' at 'segment' failed to "
            "satisfy constraint: Member must have value greater than or equal to 0",
        ),
    ],
)
def test_parallel_scan_parameters_are_validated(
    raw: Client, numbers: str, members: Wire, message: str
) -> None:
    assert error_of(raw.scan, TableName=numbers, **members) == invalid(message)


# --- consumed capacity ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_items(ddb: Client, strings: str) -> int:
    """Partition "cap": three items of 1500 bytes each."""
    filler = "x" * (1500 - len("pkcapsk0d"))
    items = [{"pk": S("cap"), "sk": S(str(i)), "d": S(filler)} for i in range(3)]
    assert all(item_size(decode_item(item)) == 1500 for item in items)
    put_all(ddb, strings, items)
    return 4500


@pytest.mark.parametrize(("consistent", "units"), [(True, 2.0), (False, 1.0)])
def test_capacity_is_the_summed_size_rounded_up_once(
    ddb: Client, strings: str, three_items: int, consistent: bool, units: float
) -> None:
    response = query(ddb, strings, "cap", ConsistentRead=consistent, ReturnConsumedCapacity="TOTAL")
    assert math.ceil(three_items / 4096) == 2
    assert response["ConsumedCapacity"]["CapacityUnits"] == units
    assert response["ConsumedCapacity"]["TableName"] == strings


def test_capacity_counts_filtered_out_items(ddb: Client, strings: str, three_items: int) -> None:
    response = ddb.query(
        TableName=strings,
        KeyConditionExpression="pk = :pk",
        FilterExpression="attribute_not_exists(d)",
        ExpressionAttributeValues={":pk": S("cap")},
        ConsistentRead=True,
        ReturnConsumedCapacity="TOTAL",
    )
    assert response["Count"] == 0 and response["ConsumedCapacity"]["CapacityUnits"] == 2.0


def test_an_empty_read_consumes_the_minimum_unit(ddb: Client, strings: str) -> None:
    response = query(ddb, strings, "nobody", ReturnConsumedCapacity="TOTAL")
    assert response["ConsumedCapacity"]["CapacityUnits"] == 0.5


def test_capacity_indexes_mode_breaks_out_the_table(
    ddb: Client, strings: str, three_items: int
) -> None:
    response = ddb.scan(
        TableName=strings, Limit=1, ConsistentRead=True, ReturnConsumedCapacity="INDEXES"
    )
    assert response["ConsumedCapacity"]["Table"]["CapacityUnits"] == 1.0


def test_no_capacity_is_reported_unless_asked(ddb: Client, strings: str) -> None:
    assert "ConsumedCapacity" not in query(ddb, strings, "cap", ReturnConsumedCapacity="NONE")


# --- the range arithmetic underneath (pure) --------------------------------------------


texts = st.text(st.characters(exclude_categories=("Cs",), max_codepoint=0x2FF), max_size=6)
blobs = st.binary(max_size=6)


@given(st.one_of(st.tuples(texts, texts), st.tuples(blobs, blobs)))
def test_begins_with_bounds_hold_exactly_the_prefixed_values(pair: tuple[Any, Any]) -> None:
    prefix, value = pair
    if not value:
        return  # key values are never empty
    low = open_prefix(prefix)
    within = KeyRange(low, successor(low)).contains(encode_scalar(value))
    assert within == value.startswith(prefix)


def test_successor_of_all_ff_bytes_is_open() -> None:
    assert successor(b"\xff\xff") is None and successor(b"\x01\xff") == b"\x02"


@given(
    st.dictionaries(
        st.text(max_size=4),
        st.recursive(
            st.one_of(
                st.text(max_size=5).map(lambda t: {"S": t}),
                st.decimals(min_value=-(10**9), max_value=10**9, places=3).map(
                    lambda d: {"N": str(check_number(d))}
                ),
                st.binary(max_size=5).map(lambda b: {"B": b}),
                st.booleans().map(lambda b: {"BOOL": b}),
                st.just({"NULL": True}),
            ),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3).map(lambda v: {"L": v}),
                st.dictionaries(st.text(max_size=3), inner, max_size=3).map(lambda v: {"M": v}),
            ),
            max_leaves=6,
        ),
        max_size=4,
    )
)
def test_stored_item_size_is_dynamodb_item_size(wire: Wire) -> None:
    wire = {name: _b64(member) for name, member in wire.items()}
    item = decode_item(wire)
    assert stored_item_size(orjson.loads(dump_item(item))) == item_size(item)


def _b64(member: Any) -> Any:
    if isinstance(member, dict):
        if "B" in member and isinstance(member["B"], bytes):
            return {"B": base64.b64encode(member["B"]).decode()}
        return {key: _b64(value) for key, value in member.items()}
    if isinstance(member, list):
        return [_b64(value) for value in member]
    return member


def test_page_reading_stops_at_the_limit_without_reading_further() -> None:
    schema = KeySchema(KeyAttribute("pk", "S"))
    blobs_read: list[int] = []

    def rows() -> Iterator[tuple[bytes, bytes]]:
        for i in range(100):
            blobs_read.append(i)
            yield b"k", dump_item({"pk": f"{i}"})

    spec = ReadSpec("t", None, False, None, None, "Filter Expression", 3, False, None, None)
    page = read_page(rows(), schema, spec)
    assert (page.count, blobs_read, page.last_key) == (3, [0, 1, 2], {"pk": S("2")})


WITHOUT_FILTER = "ConditionalOperator cannot be used without Filter or Expected"
ONE_FILTER = "ConditionalOperator can only be used when Filter or Expected has two or more elements"
EQ_ONE = {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}


@pytest.mark.parametrize(
    ("operation", "args", "message"),
    [
        ("scan", {}, WITHOUT_FILTER),
        ("scan", {"ScanFilter": {}}, WITHOUT_FILTER),
        ("scan", {"AttributesToGet": ["sk"]}, WITHOUT_FILTER),
        ("scan", {"ScanFilter": {"v": EQ_ONE}}, ONE_FILTER),
        # Before the refusal of a Query without any key condition.
        ("query", {}, WITHOUT_FILTER),
        ("query", {"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p1")]}}},
         WITHOUT_FILTER),
        ("query", {"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p1")]}},
                   "QueryFilter": {"v": EQ_ONE}}, ONE_FILTER),
    ],
)
def test_a_conditional_operator_needs_two_filter_conditions_to_join(
    raw: Client, numbers: str, operation: str, args: Wire, message: str
) -> None:
    call = getattr(raw, operation)
    assert error_of(call, TableName=numbers, ConditionalOperator="OR", **args) == invalid(message)
