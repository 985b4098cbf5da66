"""DynamoDB Streams against a real engine: boto3's ``dynamodbstreams`` client, DynamoDB's shapes.

Where DynamoDB's wording or numbers are known they are asserted exactly:
"Requested resource not found: Stream: <arn> not found" and "... Shard does
not exist" (as AWS clients match on them), the API model's constraints, and
the SizeBytes DynamoDB Local computes for the same writes (20, 35, 22).
``raw`` skips botocore's client-side checks so the engine sees what a
careless client sends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, make_client, start_engine, unique_name

Wire = dict[str, Any]
VIEWS = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


@pytest.fixture(scope="module")
def streams(engine: EngineProcess):  # type: ignore[no-untyped-def]
    return engine.client("dynamodbstreams")


@pytest.fixture(scope="module")
def raw(engine: EngineProcess):  # type: ignore[no-untyped-def]
    """A streams client that sends whatever it is given (no botocore parameter validation)."""
    return engine.client(
        "dynamodbstreams", config=Config(parameter_validation=False, retries={"max_attempts": 0})
    )


def stream_table(ddb, view: str = "NEW_AND_OLD_IMAGES", **extra: Any) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A new table with a stream; returns (table name, stream ARN)."""
    name = unique_name("st")
    create_table(ddb, name, StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
                 **extra)
    return name, ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def shard_of(streams, arn: str) -> str:  # type: ignore[no-untyped-def]
    return streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]


def iterator(streams, arn: str, kind: str = "TRIM_HORIZON", **extra: Any) -> str:  # type: ignore[no-untyped-def]
    return streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard_of(streams, arn), ShardIteratorType=kind, **extra
    )["ShardIterator"]


def read_all(streams, arn: str, kind: str = "TRIM_HORIZON", **extra: Any) -> list[Wire]:  # type: ignore[no-untyped-def]
    """Every record from ``kind`` to the shard's current end."""
    records: list[Wire] = []
    position: str | None = iterator(streams, arn, kind, **extra)
    while position is not None:
        page = streams.get_records(ShardIterator=position)
        records.extend(page["Records"])
        position = page.get("NextShardIterator")
        if not page["Records"]:
            break
    return records


def error_of(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def S(text: str) -> Wire:
    return {"S": text}


def images(record: Wire) -> tuple[Wire | None, Wire | None]:
    body = record["dynamodb"]
    return body.get("OldImage"), body.get("NewImage")


# --- ListStreams -------------------------------------------------------------------------------


def test_list_streams_shows_a_tables_stream_with_its_label(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    label = ddb.describe_table(TableName=name)["Table"]["LatestStreamLabel"]
    listed = streams.list_streams()["Streams"]
    assert {"StreamArn": arn, "TableName": name, "StreamLabel": label} in listed


def test_list_streams_with_a_table_name_lists_only_that_tables_streams(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    stream_table(ddb)
    assert [s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]] == [arn]


def test_a_table_without_a_stream_lists_none(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name = create_table(ddb, unique_name("st"))
    assert streams.list_streams(TableName=name)["Streams"] == []


def test_list_streams_pages_with_limit_and_last_evaluated_arn(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        stream_table(ddb)
    everything = [s["StreamArn"] for s in streams.list_streams()["Streams"]]
    paged: list[str] = []
    start: dict[str, str] = {}
    while True:
        page = streams.list_streams(Limit=2, **start)
        paged.extend(s["StreamArn"] for s in page["Streams"])
        if "LastEvaluatedStreamArn" not in page:
            break
        assert len(page["Streams"]) == 2
        start = {"ExclusiveStartStreamArn": page["LastEvaluatedStreamArn"]}
    assert paged == everything and len(everything) >= 3


def test_list_streams_of_a_missing_table_is_resource_not_found(streams) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: streams.list_streams(TableName="no-such-table")) == (
        "ResourceNotFoundException", "Requested resource not found: Table: no-such-table not found")


def test_list_streams_limit_over_100_is_rejected(streams) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: streams.list_streams(Limit=101)) == (
        "ValidationException",
        "One or more parameter values were invalid: Limit cannot be greater than the maximum "
        "allowed size: 100")


def test_list_streams_limit_below_1_fails_the_models_constraint(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.list_streams(Limit=0)) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


def test_list_streams_from_a_malformed_arn_is_rejected(streams) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: streams.list_streams(ExclusiveStartStreamArn="x" * 40)) == (
        "ValidationException", "Invalid ExclusiveStartStreamArn")


# --- DescribeStream ----------------------------------------------------------------------------


def test_describe_stream_reports_the_stream_and_its_one_open_shard(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb, "NEW_IMAGE", range_key="sk", range_type="N")
    table = ddb.describe_table(TableName=name)["Table"]
    description = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    shard = description.pop("Shards")[0]
    created = description.pop("CreationRequestDateTime")
    assert description == {
        "StreamArn": arn,
        "StreamLabel": table["LatestStreamLabel"],
        "StreamStatus": "ENABLED",
        "StreamViewType": "NEW_IMAGE",
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
    }
    assert abs((created - table["CreationDateTime"]).total_seconds()) < 1
    assert set(shard) == {"ShardId", "SequenceNumberRange"}  # no ParentShardId
    assert shard["ShardId"].startswith("shardId-")
    assert set(shard["SequenceNumberRange"]) == {"StartingSequenceNumber"}  # open: no end


def test_the_label_is_the_streams_creation_time(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    description = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    created = description["CreationRequestDateTime"].astimezone(UTC)
    assert description["StreamLabel"] == created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def test_describe_stream_of_an_unknown_stream_is_resource_not_found(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    unknown = arn[:-3] + ("000" if not arn.endswith("000") else "001")
    assert error_of(lambda: streams.describe_stream(StreamArn=unknown)) == (
        "ResourceNotFoundException", f"Requested resource not found: Stream: {unknown} not found")


def test_describe_stream_of_a_malformed_arn_is_rejected(streams) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: streams.describe_stream(StreamArn="x" * 40)) == (
        "ValidationException", "Invalid StreamArn")


def test_describe_stream_arn_shorter_than_37_fails_the_models_constraint(raw) -> None:  # type: ignore[no-untyped-def]
    assert error_of(lambda: raw.describe_stream(StreamArn="arn")) == (
        "ValidationException",
        "1 validation error detected: Value 'arn' at 'streamArn' failed to satisfy constraint: "
        "Member must have length greater than or equal to 37")


def test_describe_stream_after_its_last_shard_lists_no_shards(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    shard = shard_of(streams, arn)
    page = streams.describe_stream(StreamArn=arn, ExclusiveStartShardId=shard)["StreamDescription"]
    assert page["Shards"] == [] and "LastEvaluatedShardId" not in page


def test_describe_stream_limit_over_100_is_rejected(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    assert error_of(lambda: streams.describe_stream(StreamArn=arn, Limit=101)) == (
        "ValidationException",
        "One or more parameter values were invalid: Limit cannot be greater than the maximum: 100")


def test_a_shard_has_no_child_shards(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    shard_filter = {"Type": "CHILD_SHARDS", "ShardId": shard_of(streams, arn)}
    assert streams.describe_stream(StreamArn=arn, ShardFilter=shard_filter)["StreamDescription"][
        "Shards"] == []


# --- GetShardIterator --------------------------------------------------------------------------


def write_three(ddb, name: str) -> None:  # type: ignore[no-untyped-def]
    for value in ("one", "two", "three"):
        ddb.put_item(TableName=name, Item={"pk": S(value)})


def keys_of(records: list[Wire]) -> list[str]:
    return [record["dynamodb"]["Keys"]["pk"]["S"] for record in records]


def test_trim_horizon_reads_from_the_oldest_record(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    assert keys_of(read_all(streams, arn)) == ["one", "two", "three"]


def test_latest_reads_only_records_written_after_it(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    latest = iterator(streams, arn, "LATEST")
    ddb.put_item(TableName=name, Item={"pk": S("four")})
    assert keys_of(streams.get_records(ShardIterator=latest)["Records"]) == ["four"]


def test_at_sequence_number_starts_at_that_record(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    second = read_all(streams, arn)[1]["dynamodb"]["SequenceNumber"]
    assert keys_of(read_all(streams, arn, "AT_SEQUENCE_NUMBER", SequenceNumber=second)) == [
        "two", "three"]


def test_after_sequence_number_starts_after_that_record(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    second = read_all(streams, arn)[1]["dynamodb"]["SequenceNumber"]
    assert keys_of(read_all(streams, arn, "AFTER_SEQUENCE_NUMBER", SequenceNumber=second)) == [
        "three"]


def test_at_timestamp_starts_at_the_first_record_written_then(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": S("before")})
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    ddb.put_item(TableName=name, Item={"pk": S("after")})
    assert keys_of(read_all(streams, arn, "AT_TIMESTAMP", Timestamp=since)) == ["after"]


def test_at_timestamp_in_the_future_is_rejected(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    later = datetime.fromtimestamp(time.time() + 3600, UTC)
    code, _ = error_of(lambda: iterator(streams, arn, "AT_TIMESTAMP", Timestamp=later))
    assert code == "ValidationException"


@pytest.mark.parametrize("kind", ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"])
def test_sequence_number_iterators_need_a_sequence_number(ddb, streams, kind: str) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    assert error_of(lambda: iterator(streams, arn, kind)) == (
        "ValidationException", "One or more parameter values were invalid: Invalid SequenceNumber")


@pytest.mark.parametrize("kind", ["TRIM_HORIZON", "LATEST"])
def test_other_iterators_refuse_a_sequence_number(ddb, streams, kind: str) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    number = read_all(streams, arn)[0]["dynamodb"]["SequenceNumber"]
    assert error_of(lambda: iterator(streams, arn, kind, SequenceNumber=number)) == (
        "ValidationException",
        "One or more parameter values were invalid: SequenceNumber should not be passed for this "
        "iterator type")


def test_a_sequence_number_beyond_the_shard_is_rejected(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    last = read_all(streams, arn)[-1]["dynamodb"]["SequenceNumber"]
    beyond = str(int(last) + 1)
    code, message = error_of(lambda: iterator(streams, arn, "AT_SEQUENCE_NUMBER", SequenceNumber=beyond))
    assert code == "ValidationException" and beyond in message


def test_a_sequence_number_that_is_not_a_number_is_rejected(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    code, message = error_of(
        lambda: iterator(streams, arn, "AT_SEQUENCE_NUMBER", SequenceNumber="x" * 21))
    assert code == "ValidationException" and "Invalid SequenceNumber" in message


def test_a_sequence_number_shorter_than_21_fails_the_models_constraint(ddb, streams, raw) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    shard = shard_of(streams, arn)
    assert error_of(lambda: raw.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber="1",
    )) == (
        "ValidationException",
        "1 validation error detected: Value '1' at 'sequenceNumber' failed to satisfy constraint: "
        "Member must have length greater than or equal to 21")


def test_an_unknown_iterator_type_fails_the_models_enum(ddb, streams, raw) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    shard = shard_of(streams, arn)
    code, message = error_of(
        lambda: raw.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="FIRST"))
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'FIRST' at 'shardIteratorType'")


def test_an_unknown_shard_is_resource_not_found(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    assert error_of(lambda: streams.get_shard_iterator(
        StreamArn=arn, ShardId="shardId-00000000000000000000-00000000", ShardIteratorType="LATEST",
    )) == ("ResourceNotFoundException", "Requested resource not found: Shard does not exist")


def test_a_shard_of_another_stream_is_resource_not_found(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    _, other = stream_table(ddb)
    code, message = error_of(lambda: streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard_of(streams, other), ShardIteratorType="LATEST"))
    assert (code, message) == ("ResourceNotFoundException",
                               "Requested resource not found: Shard does not exist")


def test_an_iterator_for_an_unknown_stream_is_resource_not_found(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    unknown = arn.replace(f"table/{name}/", "table/no-such-table/")
    assert error_of(lambda: streams.get_shard_iterator(
        StreamArn=unknown, ShardId=shard_of(streams, arn), ShardIteratorType="LATEST",
    )) == ("ResourceNotFoundException", f"Requested resource not found: Stream: {unknown} not found")


# --- GetRecords: the records -------------------------------------------------------------------


def test_records_have_dynamodbs_shape_and_sizes(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb, range_key="sk", range_type="N")
    key = {"pk": S("a"), "sk": {"N": "1"}}
    ddb.put_item(TableName=name, Item={**key, "x": S("hello")})
    ddb.put_item(TableName=name, Item={**key, "x": S("bye"), "n": {"N": "1.50"}})
    ddb.delete_item(TableName=name, Key=key)
    records = read_all(streams, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    # The sizes DynamoDB Local reports for the same three writes.
    assert [r["dynamodb"]["SizeBytes"] for r in records] == [20, 35, 22]
    for record in records:
        assert set(record) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion",
                               "dynamodb"}
        assert (record["eventVersion"], record["eventSource"], record["awsRegion"]) == (
            "1.1", "aws:dynamodb", "us-east-1")
        assert len(record["eventID"]) == 32
        body = record["dynamodb"]
        assert body["Keys"] == key and body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert abs(body["ApproximateCreationDateTime"].timestamp() - time.time()) < 60
    assert images(records[1]) == ({**key, "x": S("hello")}, {**key, "x": S("bye"), "n": {"N": "1.5"}})


def test_event_ids_differ_between_records(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    assert len({r["eventID"] for r in read_all(streams, arn)}) == 3


@pytest.mark.parametrize(("view", "old", "new"), [
    ("KEYS_ONLY", False, False),
    ("NEW_IMAGE", False, True),
    ("OLD_IMAGE", True, False),
    ("NEW_AND_OLD_IMAGES", True, True),
])
def test_each_view_type_sends_its_images(ddb, streams, view: str, old: bool, new: bool) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb, view)
    ddb.put_item(TableName=name, Item={"pk": S("k"), "v": S("1")})
    ddb.put_item(TableName=name, Item={"pk": S("k"), "v": S("2")})
    modify = read_all(streams, arn)[1]
    assert modify["eventName"] == "MODIFY" and modify["dynamodb"]["StreamViewType"] == view
    assert ("OldImage" in modify["dynamodb"], "NewImage" in modify["dynamodb"]) == (old, new)
    if old:
        assert modify["dynamodb"]["OldImage"] == {"pk": S("k"), "v": S("1")}
    if new:
        assert modify["dynamodb"]["NewImage"] == {"pk": S("k"), "v": S("2")}


def test_an_items_life_is_insert_modify_remove(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": S("k"), "v": {"N": "1"}})
    ddb.update_item(TableName=name, Key={"pk": S("k")}, UpdateExpression="ADD v :one",
                    ExpressionAttributeValues={":one": {"N": "1"}})
    ddb.delete_item(TableName=name, Key={"pk": S("k")})
    records = read_all(streams, arn)
    assert [(r["eventName"], *images(r)) for r in records] == [
        ("INSERT", None, {"pk": S("k"), "v": {"N": "1"}}),
        ("MODIFY", {"pk": S("k"), "v": {"N": "1"}}, {"pk": S("k"), "v": {"N": "2"}}),
        ("REMOVE", {"pk": S("k"), "v": {"N": "2"}}, None),
    ]


def test_a_write_that_changes_nothing_emits_nothing(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    item = {"pk": S("k"), "v": S("same")}
    ddb.put_item(TableName=name, Item=item)
    ddb.put_item(TableName=name, Item=item)
    ddb.update_item(TableName=name, Key={"pk": S("k")}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": S("same")})
    ddb.delete_item(TableName=name, Key={"pk": S("missing")})
    assert [r["eventName"] for r in read_all(streams, arn)] == ["INSERT"]


def test_batch_and_transaction_writes_emit_one_record_per_item(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    ddb.batch_write_item(RequestItems={name: [
        {"PutRequest": {"Item": {"pk": S(f"b{i}")}}} for i in range(3)]})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": name, "Item": {"pk": S("t0")}}},
        {"Delete": {"TableName": name, "Key": {"pk": S("b0")}}},
    ])
    records = read_all(streams, arn)
    assert sorted(keys_of(records)) == ["b0", "b0", "b1", "b2", "t0"]
    assert Counter(r["eventName"] for r in records) == {"INSERT": 4, "REMOVE": 1}


def test_a_record_is_readable_as_soon_as_its_write_returns(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    position = iterator(streams, arn, "LATEST")
    for i in range(5):
        started = time.monotonic()
        ddb.put_item(TableName=name, Item={"pk": S(f"k{i}")})
        page = streams.get_records(ShardIterator=position)
        assert keys_of(page["Records"]) == [f"k{i}"]
        assert time.monotonic() - started < 1.0
        position = page["NextShardIterator"]


def test_sequence_numbers_are_21_or_more_digits_that_increase(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    numbers = [r["dynamodb"]["SequenceNumber"] for r in read_all(streams, arn)]
    assert all(n.isdigit() and 21 <= len(n) <= 40 for n in numbers)
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers)
    assert len(set(numbers)) == 3


def test_the_shard_starts_at_its_first_records_sequence_number(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    first = read_all(streams, arn)[0]["dynamodb"]["SequenceNumber"]
    assert shard["SequenceNumberRange"]["StartingSequenceNumber"] == first


# --- GetRecords: paging and errors ------------------------------------------------------------


def test_limit_pages_through_the_records_with_next_iterators(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    first = streams.get_records(ShardIterator=iterator(streams, arn), Limit=2)
    second = streams.get_records(ShardIterator=first["NextShardIterator"], Limit=2)
    third = streams.get_records(ShardIterator=second["NextShardIterator"], Limit=2)
    assert (keys_of(first["Records"]), keys_of(second["Records"])) == (["one", "two"], ["three"])
    assert third["Records"] == [] and third["NextShardIterator"]


def test_an_open_shard_read_to_its_end_still_gives_a_next_iterator(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    page = streams.get_records(ShardIterator=iterator(streams, arn))
    assert page["Records"] == [] and page["NextShardIterator"]


def test_get_records_limit_over_1000_is_rejected(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    assert error_of(lambda: streams.get_records(ShardIterator=iterator(streams, arn), Limit=1001)) == (
        "ValidationException",
        "One or more parameter values were invalid: Limit should be less than or equal to 1000")


def test_get_records_limit_below_1_fails_the_models_constraint(ddb, streams, raw) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    code, message = error_of(lambda: raw.get_records(ShardIterator=iterator(streams, arn), Limit=0))
    assert code == "ValidationException"
    assert message.endswith("Member must have value greater than or equal to 1")


@pytest.mark.parametrize("mangle", [
    lambda text: "garbage",
    lambda text: text[:-6] + ("AAAAA=" if not text.endswith("AAAAA=") else "BBBBB="),
    lambda text: text.replace("|1|", "|9|"),
])
def test_a_forged_or_damaged_iterator_is_invalid(ddb, streams, mangle) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    assert error_of(lambda: streams.get_records(ShardIterator=mangle(iterator(streams, arn)))) == (
        "ValidationException", "Invalid ShardIterator")


def test_an_iterator_moved_to_another_stream_is_invalid(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    _, arn = stream_table(ddb)
    _, other = stream_table(ddb)
    moved = other + "|" + iterator(streams, arn).split("|", 1)[1]
    assert error_of(lambda: streams.get_records(ShardIterator=moved)) == (
        "ValidationException", "Invalid ShardIterator")


def test_an_iterator_of_a_deleted_table_is_resource_not_found(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    position = iterator(streams, arn)
    ddb.delete_table(TableName=name)
    assert error_of(lambda: streams.get_records(ShardIterator=position)) == (
        "ResourceNotFoundException", f"Requested resource not found: Stream: {arn} not found")


# --- disabling and enabling again --------------------------------------------------------------


def disable(ddb, name: str) -> None:  # type: ignore[no-untyped-def]
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})


def enable(ddb, name: str, view: str = "KEYS_ONLY") -> str:  # type: ignore[no-untyped-def]
    table = ddb.update_table(
        TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": view}
    )["TableDescription"]
    return table["LatestStreamArn"]


def test_disabling_closes_the_shard_at_its_last_record(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    disable(ddb, name)
    description = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    last = read_all(streams, arn)[-1]["dynamodb"]["SequenceNumber"]
    assert description["StreamStatus"] == "DISABLED"
    assert description["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"] == last


def test_a_closed_shard_read_to_its_end_gives_no_next_iterator(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    disable(ddb, name)
    first = streams.get_records(ShardIterator=iterator(streams, arn), Limit=2)
    last = streams.get_records(ShardIterator=first["NextShardIterator"])
    assert keys_of(last["Records"]) == ["three"] and "NextShardIterator" not in last


def test_an_iterator_taken_before_disabling_ends_at_the_shards_end(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    position = iterator(streams, arn, "LATEST")
    ddb.put_item(TableName=name, Item={"pk": S("in")})
    disable(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": S("out")})
    page = streams.get_records(ShardIterator=position)
    assert keys_of(page["Records"]) == ["in"] and "NextShardIterator" not in page


def test_latest_on_a_closed_shard_reads_nothing_and_ends(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    disable(ddb, name)
    page = streams.get_records(ShardIterator=iterator(streams, arn, "LATEST"))
    assert page["Records"] == [] and "NextShardIterator" not in page


def test_enabling_again_makes_a_new_stream_with_a_new_arn_and_label(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    old_label = ddb.describe_table(TableName=name)["Table"]["LatestStreamLabel"]
    disable(ddb, name)
    new_arn = enable(ddb, name, "NEW_IMAGE")
    table = ddb.describe_table(TableName=name)["Table"]
    assert new_arn != arn and table["LatestStreamArn"] == new_arn
    assert table["LatestStreamLabel"] > old_label
    assert new_arn.endswith("/stream/" + table["LatestStreamLabel"])
    description = streams.describe_stream(StreamArn=new_arn)["StreamDescription"]
    assert (description["StreamStatus"], description["StreamViewType"]) == ("ENABLED", "NEW_IMAGE")
    assert shard_of(streams, new_arn) != shard_of(streams, arn)


def test_each_stream_holds_only_the_writes_made_while_it_was_enabled(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name = create_table(ddb, unique_name("st"))
    ddb.put_item(TableName=name, Item={"pk": S("before")})
    first = enable(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": S("first")})
    disable(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": S("between")})
    second = enable(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": S("second")})
    assert keys_of(read_all(streams, first)) == ["first"]
    assert keys_of(read_all(streams, second)) == ["second"]


def test_the_old_stream_stays_listed_after_enabling_again(ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    disable(ddb, name)
    new_arn = enable(ddb, name)
    listed = [s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]]
    assert listed == [arn, new_arn]


# --- ordering under concurrent writers ------------------------------------------------------


def writer(endpoint: str, name: str, number: int, keys: list[str], writes: list[tuple]) -> None:
    """Puts and deletes over shared keys; records (key, old, new) as the engine answered."""
    client = make_client(endpoint)
    for i in range(40):
        key = keys[(number * 7 + i * 3) % len(keys)]
        if i % 5 == 4:
            old = client.delete_item(TableName=name, Key={"pk": S(key)}, ReturnValues="ALL_OLD")
            if "Attributes" in old:
                writes.append((key, old["Attributes"], None))
            continue
        item = {"pk": S(key), "by": S(f"{number}-{i}")}
        old = client.put_item(TableName=name, Item=item, ReturnValues="ALL_OLD")
        writes.append((key, old.get("Attributes"), item))


def _frozen(image: Wire | None) -> tuple | None:
    return None if image is None else tuple(sorted((k, v["S"]) for k, v in image.items()))


def test_concurrent_writers_records_come_once_each_and_in_item_order(engine, ddb, streams) -> None:  # type: ignore[no-untyped-def]
    name, arn = stream_table(ddb)
    keys = [f"k{i}" for i in range(6)]
    writes: list[tuple] = []
    threads = [threading.Thread(target=writer, args=(engine.endpoint, name, n, keys, writes))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = read_all(streams, arn)
    seen = [(r["dynamodb"]["Keys"]["pk"]["S"], *map(_frozen, images(r))) for r in records]
    written = [(key, _frozen(old), _frozen(new)) for key, old, new in writes]
    assert Counter(seen) == Counter(written) and len(seen) == len(written)
    chains: dict[str, list[tuple]] = defaultdict(list)
    for key, old, new in seen:
        chains[key].append((old, new))
    for chain in chains.values():  # each record's old image is the previous record's new one
        assert chain[0][0] is None
        assert all(chain[i][0] == chain[i - 1][1] for i in range(1, len(chain)))


# --- restart ---------------------------------------------------------------------------------


@pytest.fixture
def own_engine(tmp_path: Path) -> Iterator[EngineProcess]:
    process = start_engine(tmp_path / "data")
    yield process
    process.stop()


def test_iterators_and_sequence_numbers_survive_a_restart(own_engine: EngineProcess) -> None:
    ddb = own_engine.client()
    name, arn = stream_table(ddb)
    write_three(ddb, name)
    streams = own_engine.client("dynamodbstreams")
    before = read_all(streams, arn)
    position = iterator(streams, arn)
    own_engine.stop()
    again = start_engine(own_engine.data_dir)
    try:
        streams = again.client("dynamodbstreams")
        page = streams.get_records(ShardIterator=position)
        assert page["Records"] == before
    finally:
        again.stop()
