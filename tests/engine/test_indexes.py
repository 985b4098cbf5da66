"""Global and local secondary indexes against a real engine: definitions, writes, reads.

Expected messages are DynamoDB's own, as recorded by suites run against the
service (dynalite's tests, the ack-api-quirks DynamoDB findings) — except the
one for more than 100 projected attributes, whose wording is not verified.
Creating and deleting indexes on live tables is in test_index_updates.py.
"""

from __future__ import annotations

import pytest
from botocore.config import Config

from tablekeeper.engine.values import decode_item, item_size
from tests.conftest import EngineProcess, unique_name
from tests.engine.index_support import (
    CAPACITY,
    HASH_ONLY,
    INVALID,
    KEY_MISMATCH,
    PPR,
    PROVISIONED,
    START_INVALID,
    TWO_KEYS,
    Client,
    N,
    S,
    Wire,
    all_pages,
    defs,
    error_of,
    gsi,
    index_of,
    invalid,
    key_schema,
    lsi,
    put_all,
    query_index,
    scan_all,
    tag,
)


@pytest.fixture(scope="module")
def raw(engine: EngineProcess) -> Client:
    """A client that sends whatever it is given (no botocore parameter validation)."""
    return engine.client(config=Config(parameter_validation=False, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def shop(ddb: Client) -> str:
    """pk/sk table with three global indexes (one per projection type) and a local one."""
    name = unique_name("ix")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=key_schema("pk", "sk"),
        AttributeDefinitions=defs(pk="S", sk="S", g="S", r="N", h="S", a="S", l="N"),
        GlobalSecondaryIndexes=[
            gsi("byG", "g", "r", "KEYS_ONLY"),
            gsi("byH", "h", None, "INCLUDE", ["x"]),
            gsi("byA", "a", "sk", "ALL"),
        ],
        LocalSecondaryIndexes=[lsi("byL", "pk", "l", "INCLUDE", ["x"])],
    )
    return name


# --- CreateTable ---------------------------------------------------------------------------------


def test_create_table_answers_with_every_index_described(ddb: Client) -> None:
    name = unique_name("ix")
    created = ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk", "sk"),
        AttributeDefinitions=defs(pk="S", sk="S", g="N"),
        GlobalSecondaryIndexes=[gsi("byG", "g", None, "INCLUDE", ["z", "b"])],
        LocalSecondaryIndexes=[lsi("byL", "pk", "g", "KEYS_ONLY")],
    )["TableDescription"]
    arn = created["TableArn"]
    assert created["GlobalSecondaryIndexes"] == [{
        "IndexName": "byG",
        "KeySchema": key_schema("g"),
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["b", "z"]},
        "IndexStatus": "CREATING",
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0,
        },
        "IndexSizeBytes": 0,
        "ItemCount": 0,
        "IndexArn": f"{arn}/index/byG",
    }]
    assert created["LocalSecondaryIndexes"] == [{
        "IndexName": "byL",
        "KeySchema": key_schema("pk", "g"),
        "Projection": {"ProjectionType": "KEYS_ONLY"},
        "IndexSizeBytes": 0,
        "ItemCount": 0,
        "IndexArn": f"{arn}/index/byL",
    }]


def test_indexes_created_with_the_table_are_active_at_once(ddb: Client, shop: str) -> None:
    described = ddb.describe_table(TableName=shop)["Table"]
    statuses = {i["IndexName"]: i["IndexStatus"] for i in described["GlobalSecondaryIndexes"]}
    assert statuses == {"byG": "ACTIVE", "byH": "ACTIVE", "byA": "ACTIVE"}
    assert all("Backfilling" not in i for i in described["GlobalSecondaryIndexes"])


def test_provisioned_global_indexes_keep_their_throughput(ddb: Client) -> None:
    name = unique_name("ix")
    ddb.create_table(
        TableName=name, KeySchema=key_schema("pk"), AttributeDefinitions=defs(pk="S", g="S"),
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        GlobalSecondaryIndexes=[gsi("byG", "g", ProvisionedThroughput={
            "ReadCapacityUnits": 3, "WriteCapacityUnits": 2})],
    )
    assert index_of(ddb, name, "byG")["ProvisionedThroughput"] == {
        "NumberOfDecreasesToday": 0, "ReadCapacityUnits": 3, "WriteCapacityUnits": 2,
    }


def test_non_key_attributes_may_name_key_attributes(ddb: Client) -> None:
    name = unique_name("ix")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
        AttributeDefinitions=defs(pk="S", g="S"),
        GlobalSecondaryIndexes=[gsi("byG", "g", None, "INCLUDE", ["pk", "g"])],
    )
    assert index_of(ddb, name, "byG")["IndexStatus"] == "ACTIVE"



CREATE_ERRORS: list[tuple[str, Wire, str]] = [
    ("empty global index list", {**TWO_KEYS, **PPR, "AttributeDefinitions": defs(pk="S", sk="S"),
                                 "GlobalSecondaryIndexes": []},
     INVALID + "List of GlobalSecondaryIndexes is empty"),
    ("empty local index list", {**TWO_KEYS, **PPR, "AttributeDefinitions": defs(pk="S", sk="S"),
                                "LocalSecondaryIndexes": []},
     INVALID + "List of LocalSecondaryIndexes is empty"),
    ("unused definition", {**HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S", x="S"),
                           "GlobalSecondaryIndexes": [gsi("byG", "g")]},
     INVALID + "Some AttributeDefinitions are not used. AttributeDefinitions: [pk, g, x], "
     "keys used: [pk, g]"),
    ("undefined index key", {**HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S"),
                             "GlobalSecondaryIndexes": [gsi("byG", "g", "pk")]},
     INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
     "Keys: [g, pk], AttributeDefinitions: [pk]"),
    ("local index without table sort key", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", l="S"),
        "LocalSecondaryIndexes": [lsi("byL", "pk", "l")]},
     INVALID + "Table KeySchema does not have a range key, which is required when specifying "
     "a LocalSecondaryIndex"),
    ("local index without sort key", {
        **TWO_KEYS, **PPR, "AttributeDefinitions": defs(pk="S", sk="S"),
        "LocalSecondaryIndexes": [lsi("byL", "pk")]},
     INVALID + "Index KeySchema does not have a range key for index: byL"),
    ("local index with another partition key", {
        **TWO_KEYS, **PPR, "AttributeDefinitions": defs(pk="S", sk="S"),
        "LocalSecondaryIndexes": [lsi("byL", "sk", "pk")]},
     INVALID + "Index KeySchema does not have the same leading hash key as table KeySchema for "
     "index: byL. index hash key: sk, table hash key: pk"),
    ("first index key not HASH", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [{"IndexName": "byG", "Projection": {"ProjectionType": "ALL"},
                                    "KeySchema": [{"AttributeName": "g", "KeyType": "RANGE"}]}]},
     "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
    ("index keys with one name", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("byG", "g", "g")]},
     "Both the Hash Key and the Range Key element in the KeySchema have the same name"),
    ("no projection type", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": key_schema("g"),
                                    "Projection": {}}]},
     INVALID + "Unknown ProjectionType: null"),
    ("non-key attributes with ALL", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("byG", "g", None, "ALL", ["x"])]},
     INVALID + "ProjectionType is ALL, but NonKeyAttributes is specified"),
    ("INCLUDE without non-key attributes", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("byG", "g", None, "INCLUDE")]},
     INVALID + "ProjectionType is INCLUDE, but NonKeyAttributes is not specified"),
    ("duplicate non-key attribute", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("byG", "g", None, "INCLUDE", ["x", "x"])]},
     INVALID + "Duplicate element in NonKeyAttributes: x"),
    ("duplicate global index name", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("dup", "g"), gsi("dup", "g")]},
     INVALID + "Duplicate index name: dup"),
    ("local and global index of one name", {
        **TWO_KEYS, **PPR, "AttributeDefinitions": defs(pk="S", sk="S", g="S"),
        "LocalSecondaryIndexes": [lsi("dup", "pk", "g")],
        "GlobalSecondaryIndexes": [gsi("dup", "g")]},
     INVALID + "Duplicate index name: dup"),
    ("six local indexes", {
        **TWO_KEYS, **PPR, "AttributeDefinitions": defs(pk="S", sk="S", l="S"),
        "LocalSecondaryIndexes": [lsi(f"byL{i}", "pk", "l") for i in range(6)]},
     INVALID + "Number of LocalSecondaryIndexes exceeds per-table limit of 5"),
    ("twenty-one global indexes", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi(f"byG{i}", "g") for i in range(21)]},
     INVALID + "GlobalSecondaryIndex count exceeds the per-table limit of 20"),
    ("over 100 projected attributes", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [
            gsi(f"byG{i}", "g", None, "INCLUDE", [f"a{n}" for n in range(20)]) for i in range(6)
        ]},
     INVALID + "Number of projected attributes in all indexes exceeds limit of 100"),
    ("index throughput on demand", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("byG", "g", ProvisionedThroughput=CAPACITY)]},
     INVALID + "ProvisionedThroughput should not be specified for index: byG when BillingMode "
     "is PAY_PER_REQUEST"),
    ("provisioned index without throughput", {
        **HASH_ONLY, **PROVISIONED, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("byG", "g")]},
     INVALID + "ProvisionedThroughput is not specified for index: byG"),
    ("short index name", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [gsi("ab", "g")]},
     "1 validation error detected: Value 'ab' at 'globalSecondaryIndexes.1.member.indexName' "
     "failed to satisfy constraint: Member must have length greater than or equal to 3"),
    ("no projection", {
        **HASH_ONLY, **PPR, "AttributeDefinitions": defs(pk="S", g="S"),
        "GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": key_schema("g")}]},
     "1 validation error detected: Value null at 'globalSecondaryIndexes.1.member.projection' "
     "failed to satisfy constraint: Member must not be null"),
]


@pytest.mark.parametrize(("case", "request_", "message"), CREATE_ERRORS,
                         ids=[case for case, _, _ in CREATE_ERRORS])
def test_create_table_refuses_a_bad_index_definition(
    raw: Client, case: str, request_: Wire, message: str
) -> None:
    name = unique_name("ix")
    assert error_of(raw.create_table, TableName=name, **request_) == invalid(message)
    assert error_of(raw.describe_table, TableName=name)[0] == "ResourceNotFoundException"


def test_an_index_projects_at_most_twenty_non_key_attributes(raw: Client) -> None:
    code, message = error_of(
        raw.create_table, TableName=unique_name("ix"), **HASH_ONLY, **PPR,
        AttributeDefinitions=defs(pk="S", g="S"),
        GlobalSecondaryIndexes=[gsi("byG", "g", None, "INCLUDE", [f"a{n}" for n in range(21)])],
    )
    assert code == "ValidationException"
    assert message.endswith(
        "at 'globalSecondaryIndexes.1.member.projection.nonKeyAttributes' failed to satisfy "
        "constraint: Member must have length less than or equal to 20"
    )


# --- writes keep index entries ----------------------------------------------------------------


def test_a_new_item_appears_in_every_index_it_has_keys_for(ddb: Client, shop: str) -> None:
    g, h = tag(), tag()
    ddb.put_item(TableName=shop, Item={"pk": S(g), "sk": S("1"), "g": S(g), "r": N(1), "h": S(h)})
    assert query_index(ddb, shop, "byG", "g = :g", g=S(g)) == [
        {"pk": S(g), "sk": S("1"), "g": S(g), "r": N(1)}
    ]
    assert len(query_index(ddb, shop, "byH", "h = :h", h=S(h))) == 1
    assert query_index(ddb, shop, "byA", "a = :a", a=S(g)) == []


def test_changing_the_index_key_moves_the_entry(ddb: Client, shop: str) -> None:
    old, new = tag(), tag()
    key = {"pk": S(old), "sk": S("1")}
    ddb.put_item(TableName=shop, Item={**key, "g": S(old), "r": N(1)})
    ddb.update_item(TableName=shop, Key=key, UpdateExpression="SET g = :g",
                    ExpressionAttributeValues={":g": S(new)})
    assert query_index(ddb, shop, "byG", "g = :g", g=S(old)) == []
    assert query_index(ddb, shop, "byG", "g = :g", g=S(new)) == [{**key, "g": S(new), "r": N(1)}]


def test_deleting_an_item_removes_its_entries(ddb: Client, shop: str) -> None:
    g = tag()
    key = {"pk": S(g), "sk": S("1")}
    ddb.put_item(TableName=shop, Item={**key, "g": S(g), "r": N(1), "a": S(g)})
    ddb.delete_item(TableName=shop, Key=key)
    assert query_index(ddb, shop, "byG", "g = :g", g=S(g)) == []
    assert query_index(ddb, shop, "byA", "a = :a", a=S(g)) == []


def test_removing_an_index_key_attribute_takes_the_item_out_of_the_index(
    ddb: Client, shop: str
) -> None:
    g = tag()
    key = {"pk": S(g), "sk": S("1")}
    ddb.put_item(TableName=shop, Item={**key, "g": S(g), "r": N(1)})
    ddb.update_item(TableName=shop, Key=key, UpdateExpression="REMOVE r")
    assert query_index(ddb, shop, "byG", "g = :g", g=S(g)) == []


def test_an_item_whose_index_key_attribute_has_another_type_is_refused(
    ddb: Client, shop: str
) -> None:
    key = {"pk": S(tag()), "sk": S("1")}
    assert error_of(ddb.put_item, TableName=shop, Item={**key, "g": N(5)}) == invalid(
        INVALID + "Type mismatch for Index Key g Expected: S Actual: N IndexName: byG"
    )
    assert "Item" not in ddb.get_item(TableName=shop, Key=key)


def test_an_update_giving_an_index_key_another_type_is_refused(ddb: Client, shop: str) -> None:
    key = {"pk": S(tag()), "sk": S("1")}
    ddb.put_item(TableName=shop, Item={**key, "v": N(1)})
    assert error_of(
        ddb.update_item, TableName=shop, Key=key, UpdateExpression="SET l = :l",
        ExpressionAttributeValues={":l": S("text")},
    ) == invalid(INVALID + "Type mismatch for Index Key l Expected: N Actual: S IndexName: byL")
    assert ddb.get_item(TableName=shop, Key=key)["Item"] == {**key, "v": N(1)}


def test_an_empty_string_index_key_is_refused(ddb: Client, shop: str) -> None:
    item = {"pk": S(tag()), "sk": S("1"), "h": S("")}
    assert error_of(ddb.put_item, TableName=shop, Item=item) == invalid(
        "One or more parameter values are not valid. A value specified for a secondary index "
        "key is not supported. The AttributeValue for a key attribute cannot contain an empty "
        "string value. IndexName: byH, IndexKey: h"
    )


def test_an_index_key_past_its_size_limit_is_refused_and_one_at_the_limit_kept(
    ddb: Client, shop: str
) -> None:
    """2048 bytes for an index partition key, 1024 for a sort key, counted in UTF-8 bytes;
    the message is the one DynamoDB users report for index partition keys."""
    key = {"pk": S(tag()), "sk": S("1")}
    assert error_of(ddb.put_item, TableName=shop, Item={**key, "h": S("é" * 1024 + "x")}) == invalid(
        INVALID + "Size limit exceeded for Index Key h Actual Size: 2049 bytes Max Size: 2048 bytes "
        "IndexName: byH"
    )
    ddb.put_item(TableName=shop, Item={**key, "h": S("é" * 1024)})
    assert query_index(ddb, shop, "byH", "h = :h", h=S("é" * 1024)) == [{**key, "h": S("é" * 1024)}]
    name = unique_name("ix")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
        AttributeDefinitions=defs(pk="S", g="S", s="B"),
        GlobalSecondaryIndexes=[gsi("byGs", "g", "s", "KEYS_ONLY")],
    )
    item = {"pk": S("p"), "g": S("g"), "s": {"B": b"\x00" * 1025}}
    assert error_of(ddb.put_item, TableName=name, Item=item) == invalid(
        INVALID + "Size limit exceeded for Index Key s Actual Size: 1025 bytes Max Size: 1024 bytes "
        "IndexName: byGs"
    )
    ddb.put_item(TableName=name, Item={**item, "s": {"B": b"\x00" * 1024}})
    assert error_of(
        ddb.update_item, TableName=name, Key={"pk": S("p")}, UpdateExpression="SET g = :g",
        ExpressionAttributeValues={":g": S("x" * 2049)},
    ) == invalid(
        INVALID + "Size limit exceeded for Index Key g Actual Size: 2049 bytes Max Size: 2048 bytes "
        "IndexName: byGs"
    )


def test_projections_hold_keys_only_included_attributes_or_everything(
    ddb: Client, shop: str
) -> None:
    t = tag()
    item = {"pk": S(t), "sk": S("1"), "g": S(t), "r": N(2), "h": S(t), "a": S(t), "l": N(3),
            "x": S("kept"), "y": S("only in ALL")}
    ddb.put_item(TableName=shop, Item=item)
    keys = {"pk": S(t), "sk": S("1")}
    assert query_index(ddb, shop, "byG", "g = :g", g=S(t)) == [{**keys, "g": S(t), "r": N(2)}]
    assert query_index(ddb, shop, "byH", "h = :h", h=S(t)) == [
        {**keys, "h": S(t), "x": S("kept")}
    ]
    assert query_index(ddb, shop, "byA", "a = :a", a=S(t)) == [item]
    assert query_index(ddb, shop, "byL", "pk = :p", p=S(t)) == [
        {**keys, "l": N(3), "x": S("kept")}
    ]


def test_changing_a_projected_attribute_updates_the_entry(ddb: Client, shop: str) -> None:
    h = tag()
    key = {"pk": S(h), "sk": S("1")}
    ddb.put_item(TableName=shop, Item={**key, "h": S(h), "x": S("old")})
    ddb.update_item(TableName=shop, Key=key, UpdateExpression="SET x = :x",
                    ExpressionAttributeValues={":x": S("new")})
    assert query_index(ddb, shop, "byH", "h = :h", h=S(h))[0]["x"] == S("new")


def test_batch_and_transaction_writes_maintain_indexes(ddb: Client, shop: str) -> None:
    g = tag()
    put_all(ddb, shop, [{"pk": S(g), "sk": S("batch"), "g": S(g), "r": N(1)}])
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": shop, "Item": {"pk": S(g), "sk": S("tx"), "g": S(g), "r": N(2)}}},
    ])
    found = query_index(ddb, shop, "byG", "g = :g", g=S(g))
    assert [item["sk"] for item in found] == [S("batch"), S("tx")]


# --- Query and Scan on indexes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranked(ddb: Client, shop: str) -> str:
    """Nine items in one byG partition: r = 1, 2, 2, 2, 3, 3, 4, 5, 5 (sk orders the ties)."""
    g = "ranked-" + tag()
    ranks = [1, 2, 2, 2, 3, 3, 4, 5, 5]
    put_all(ddb, shop, [
        {"pk": S(f"{g}-{i}"), "sk": S(f"s{i}"), "g": S(g), "r": N(r), "x": S(f"x{i}")}
        for i, r in enumerate(ranks)
    ])
    return g


def ranks_of(items: list[Wire]) -> list[int]:
    return [int(item["r"]["N"]) for item in items]


@pytest.mark.parametrize(("condition", "values", "expected"), [
    ("r = :a", {"a": N(2)}, [2, 2, 2]),
    ("r < :a", {"a": N(3)}, [1, 2, 2, 2]),
    ("r <= :a", {"a": N(3)}, [1, 2, 2, 2, 3, 3]),
    ("r > :a", {"a": N(3)}, [4, 5, 5]),
    ("r >= :a", {"a": N(3)}, [3, 3, 4, 5, 5]),
    ("r BETWEEN :a AND :b", {"a": N(2), "b": N(3)}, [2, 2, 2, 3, 3]),
])
def test_sort_key_conditions_on_an_index_take_in_every_tie(
    ddb: Client, shop: str, ranked: str, condition: str, values: Wire, expected: list[int]
) -> None:
    found = query_index(ddb, shop, "byG", f"g = :g AND {condition}", g=S(ranked), **values)
    assert ranks_of(found) == expected


def test_an_index_query_reads_backwards(ddb: Client, shop: str, ranked: str) -> None:
    found = ddb.query(TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
                      ExpressionAttributeValues={":g": S(ranked)}, ScanIndexForward=False)
    assert ranks_of(found["Items"]) == [5, 5, 4, 3, 3, 2, 2, 2, 1]


@pytest.mark.parametrize("forward", [True, False])
def test_index_pages_return_every_entry_once(
    ddb: Client, shop: str, ranked: str, forward: bool
) -> None:
    seen: list[Wire] = []
    for page in all_pages(ddb.query, TableName=shop, IndexName="byG", Limit=2,
                          KeyConditionExpression="g = :g", ScanIndexForward=forward,
                          ExpressionAttributeValues={":g": S(ranked)}):
        seen.extend(page["Items"])
    assert sorted(item["pk"]["S"] for item in seen) == sorted(f"{ranked}-{i}" for i in range(9))
    assert len(seen) == 9


def test_last_evaluated_key_holds_the_index_and_table_keys(
    ddb: Client, shop: str, ranked: str
) -> None:
    page = ddb.query(TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": S(ranked)}, Limit=1)
    assert page["LastEvaluatedKey"] == {
        "g": S(ranked), "r": N(1), "pk": S(f"{ranked}-0"), "sk": S("s0"),
    }


def test_a_filter_on_an_index_applies_after_the_limit(ddb: Client, shop: str, ranked: str) -> None:
    page = ddb.query(TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
                     FilterExpression="sk <> :s", Limit=3,
                     ExpressionAttributeValues={":g": S(ranked), ":s": S("s0")})
    assert (page["Count"], page["ScannedCount"]) == (2, 3)


def test_a_filter_may_not_name_the_index_key(raw: Client, shop: str, ranked: str) -> None:
    assert error_of(
        raw.query, TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
        FilterExpression="r > :r", ExpressionAttributeValues={":g": S(ranked), ":r": N(1)},
    ) == invalid("Filter Expression can only contain non-primary key attributes: "
                 "Primary key attribute: r")


def test_an_index_scan_reads_every_entry_with_pages_and_segments(ddb: Client) -> None:
    name = unique_name("ix")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
                     AttributeDefinitions=defs(pk="S", g="S"),
                     GlobalSecondaryIndexes=[gsi("byG", "g", None, "KEYS_ONLY")])
    put_all(ddb, name, [{"pk": S(f"p{i}"), **({"g": S(f"g{i % 7}")} if i % 3 else {})}
                        for i in range(60)])
    expected = sorted(f"p{i}" for i in range(60) if i % 3)
    assert sorted(i["pk"]["S"] for i in scan_all(ddb, name, IndexName="byG", Limit=7)) == expected
    segments = [scan_all(ddb, name, IndexName="byG", Segment=s, TotalSegments=3, Limit=5)
                for s in range(3)]
    assert sorted(i["pk"]["S"] for part in segments for i in part) == expected


def test_index_reads_default_to_the_projected_attributes(ddb: Client, shop: str) -> None:
    t = tag()
    ddb.put_item(TableName=shop, Item={"pk": S(t), "sk": S("1"), "h": S(t), "x": S("x"),
                                       "y": S("y")})
    for select in ({}, {"Select": "ALL_PROJECTED_ATTRIBUTES"}):
        page = ddb.query(TableName=shop, IndexName="byH", KeyConditionExpression="h = :h",
                         ExpressionAttributeValues={":h": S(t)}, **select)
        assert page["Items"] == [{"pk": S(t), "sk": S("1"), "h": S(t), "x": S("x")}]


def test_all_attributes_from_a_global_index_without_all_projection_is_refused(
    raw: Client, shop: str
) -> None:
    assert error_of(
        raw.query, TableName=shop, IndexName="byH", KeyConditionExpression="h = :h",
        ExpressionAttributeValues={":h": S("x")}, Select="ALL_ATTRIBUTES",
    ) == invalid(INVALID + "Select type ALL_ATTRIBUTES is not supported for global secondary "
                 "index byH because its projection type is not ALL")


def test_all_attributes_from_a_local_index_fetches_the_items(ddb: Client, shop: str) -> None:
    t = tag()
    item = {"pk": S(t), "sk": S("1"), "l": N(1), "x": S("x"), "y": S("y")}
    ddb.put_item(TableName=shop, Item=item)
    page = ddb.query(TableName=shop, IndexName="byL", KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": S(t)}, Select="ALL_ATTRIBUTES",
                     ReturnConsumedCapacity="INDEXES")
    assert page["Items"] == [item]
    assert page["ConsumedCapacity"] == {
        "TableName": shop, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 0.5},
        "LocalSecondaryIndexes": {"byL": {"CapacityUnits": 0.5}},
    }


def test_a_projection_of_unprojected_attributes_from_a_local_index_fetches_them(
    ddb: Client, shop: str
) -> None:
    t = tag()
    ddb.put_item(TableName=shop, Item={"pk": S(t), "sk": S("1"), "l": N(1), "y": S("y")})
    page = ddb.query(TableName=shop, IndexName="byL", KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": S(t)}, ProjectionExpression="y, l")
    assert page["Items"] == [{"y": S("y"), "l": N(1)}]


def test_a_projection_from_a_global_index_returns_only_what_it_holds(
    ddb: Client, shop: str
) -> None:
    t = tag()
    ddb.put_item(TableName=shop, Item={"pk": S(t), "sk": S("1"), "h": S(t), "y": S("y")})
    page = ddb.query(TableName=shop, IndexName="byH", KeyConditionExpression="h = :h",
                     ExpressionAttributeValues={":h": S(t)}, ProjectionExpression="y, pk")
    assert page["Items"] == [{"pk": S(t)}]


def test_consistent_reads_of_a_global_index_are_refused(raw: Client, shop: str) -> None:
    for call, args in ((raw.query, {"KeyConditionExpression": "h = :h",
                                    "ExpressionAttributeValues": {":h": S("x")}}),
                       (raw.scan, {})):
        assert error_of(call, TableName=shop, IndexName="byH", ConsistentRead=True, **args) == (
            invalid("Consistent reads are not supported on global secondary indexes")
        )


def test_consistent_reads_of_a_local_index_are_allowed(ddb: Client, shop: str) -> None:
    page = ddb.query(TableName=shop, IndexName="byL", KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": S("none")}, ConsistentRead=True)
    assert page["Count"] == 0


def test_index_reads_report_capacity_per_index(ddb: Client, shop: str, ranked: str) -> None:
    page = ddb.query(TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": S(ranked)}, ReturnConsumedCapacity="INDEXES")
    assert page["ConsumedCapacity"] == {
        "TableName": shop, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
        "GlobalSecondaryIndexes": {"byG": {"CapacityUnits": 0.5}},
    }


def test_a_count_of_an_index_returns_no_items(ddb: Client, shop: str, ranked: str) -> None:
    page = ddb.query(TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": S(ranked)}, Select="COUNT")
    assert "Items" not in page and page["Count"] == 9


START_KEY_CASES = [
    ("scan", "byG", {"g": S("a")}, START_INVALID),
    ("scan", "byG", {"zz": S("a"), "r": N(1), "pk": S("p"), "sk": S("s")}, START_INVALID),
    ("scan", "byG", {"g": S("a"), "r": N(1), "pk": S("p"), "zz": S("s")},
     f"{START_INVALID}: {KEY_MISMATCH}"),
    ("scan", "byG", {"g": N(1), "r": N(1), "pk": S("p"), "sk": S("s")}, KEY_MISMATCH),
    ("scan", "byG", {"g": S("a"), "r": N(1), "pk": N(1), "sk": S("s")},
     f"{START_INVALID}: {KEY_MISMATCH}"),
    ("scan", "byL", {"pk": S("a"), "sk": S("s"), "l": S("x")}, KEY_MISMATCH),
    ("scan", "nope", {"pk": S("a"), "sk": S("s")}, START_INVALID),
    ("query", "byG", {"g": S("a"), "r": N(1)}, START_INVALID),
    ("query", "byG", {"g": N(1), "r": N(1), "pk": S("p"), "sk": S("s")}, KEY_MISMATCH),
    ("query", "byG", {"g": S("a"), "r": N(1), "pk": S("p"), "sk": N(1)},
     f"{START_INVALID}: {KEY_MISMATCH}"),
]


@pytest.mark.parametrize(("call", "index", "start", "message"), START_KEY_CASES)
def test_an_index_start_key_is_checked_in_dynamodb_order(
    raw: Client, shop: str, call: str, index: str, start: Wire, message: str
) -> None:
    args: Wire = {"TableName": shop, "IndexName": index, "ExclusiveStartKey": start}
    if call == "query":
        args.update(KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": S("a")})
    assert error_of(getattr(raw, call), **args) == invalid(message)


def test_a_start_key_from_another_index_partition_is_outside_the_query(
    raw: Client, shop: str
) -> None:
    start = {"g": S("b"), "r": N(1), "pk": S("p"), "sk": S("s")}
    assert error_of(
        raw.query, TableName=shop, IndexName="byG", KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": S("a")}, ExclusiveStartKey=start,
    ) == invalid("The provided starting key is outside query boundaries based on provided "
                 "conditions")


# --- capacity and item collections of writes ------------------------------------------------------


def test_writes_report_the_index_entries_they_write(ddb: Client, shop: str) -> None:
    t = tag()
    key = {"pk": S(t), "sk": S("1")}
    put = ddb.put_item(TableName=shop, Item={**key, "g": S(t), "r": N(1)},
                       ReturnConsumedCapacity="INDEXES")
    assert put["ConsumedCapacity"] == {
        "TableName": shop, "CapacityUnits": 2.0, "Table": {"CapacityUnits": 1.0},
        "GlobalSecondaryIndexes": {"byG": {"CapacityUnits": 1.0}},
    }
    moved = ddb.update_item(TableName=shop, Key=key, UpdateExpression="SET r = :r",
                            ExpressionAttributeValues={":r": N(2)},
                            ReturnConsumedCapacity="INDEXES")
    assert moved["ConsumedCapacity"]["GlobalSecondaryIndexes"] == {"byG": {"CapacityUnits": 2.0}}
    untouched = ddb.update_item(TableName=shop, Key=key, UpdateExpression="SET y = :y",
                                ExpressionAttributeValues={":y": S("y")},
                                ReturnConsumedCapacity="TOTAL")
    assert untouched["ConsumedCapacity"] == {"TableName": shop, "CapacityUnits": 1.0}


def test_writes_to_a_table_with_local_indexes_report_item_collection_metrics(
    ddb: Client, shop: str
) -> None:
    key = {"pk": S(tag()), "sk": S("1")}
    for call, args in ((ddb.put_item, {"Item": {**key, "l": N(1)}}),
                       (ddb.update_item, {"Key": key, "UpdateExpression": "SET l = :l",
                                          "ExpressionAttributeValues": {":l": N(2)}}),
                       (ddb.delete_item, {"Key": key})):
        answer = call(TableName=shop, ReturnItemCollectionMetrics="SIZE", **args)
        assert answer["ItemCollectionMetrics"] == {
            "ItemCollectionKey": {"pk": key["pk"]}, "SizeEstimateRangeGB": [0.0, 1.0],
        }


def test_tables_without_local_indexes_report_no_item_collection_metrics(ddb: Client) -> None:
    name = unique_name("ix")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
                     AttributeDefinitions=defs(pk="S"))
    answer = ddb.put_item(TableName=name, Item={"pk": S("a")}, ReturnItemCollectionMetrics="SIZE")
    assert "ItemCollectionMetrics" not in answer


# --- DescribeTable counts -------------------------------------------------------------------------


def test_describe_table_counts_each_index_entries_and_their_size(ddb: Client) -> None:
    name = unique_name("ix")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=key_schema("pk"),
                     AttributeDefinitions=defs(pk="S", g="S"),
                     GlobalSecondaryIndexes=[gsi("byG", "g", None, "KEYS_ONLY")])
    items = [{"pk": S(f"p{i}"), "v": S("x" * i), **({"g": S(f"g{i}")} if i % 2 else {})}
             for i in range(10)]
    put_all(ddb, name, items)
    ddb.delete_item(TableName=name, Key={"pk": S("p1")})
    kept = [item for item in items if "g" in item and item["pk"] != S("p1")]
    index = index_of(ddb, name, "byG")
    assert index["ItemCount"] == len(kept) == 4
    entries = [decode_item({"pk": item["pk"], "g": item["g"]}) for item in kept]
    assert index["IndexSizeBytes"] == sum(item_size(entry) for entry in entries)
