"""Streams on the change log: sequence numbers, stream epochs, iterators, record shapes (pure)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tablekeeper.engine.errors import ExpiredIteratorException, ValidationException
from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.storage.base import StoredRecord
from tablekeeper.engine.streams import (
    ITERATOR_LIFETIME_MS,
    RETENTION_SECONDS,
    ShardIterator,
    Stream,
    check_fresh,
    decode_iterator,
    disabled_stream,
    enabled_stream,
    encode_iterator,
    iterator_key,
    kept_past_streams,
    parse_sequence_number,
    parse_stream_arn,
    record_wire,
    sequence_number,
    shard_id,
    stored_size,
    streams_of,
)
from tablekeeper.engine.tables import StreamSpec, TableDefinition
from tablekeeper.engine.values import check_number, encode_item, item_size

KEY = b"k" * 32
ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/things/stream/2026-01-02T03:04:05.678"


def table(**changes: object) -> TableDefinition:
    base = TableDefinition(
        name="things", table_id="ab" * 16, key_schema=KeySchema(KeyAttribute("pk", "S")),
        attribute_definitions=(("pk", "S"),), created=1_700_000_000.0,
    )
    return base.replace(**changes)


def stored(sequence: int = 7, old: dict | None = None, new: dict | None = None,
           origin: str | None = None) -> StoredRecord:
    def blob(item: dict | None) -> bytes | None:
        return None if item is None else orjson.dumps(item)

    return StoredRecord(sequence, 1_700_000_123_456, orjson.dumps({"pk": {"S": "a"}}),
                        blob(old), blob(new), origin)


def wire(record: StoredRecord, view: str = "NEW_AND_OLD_IMAGES") -> dict:
    return orjson.loads(orjson.dumps(record_wire(record, view, "us-east-1", "ab" * 16)))


# --- sequence numbers ---


def test_sequence_numbers_have_21_digits_and_sort_as_text_and_as_numbers() -> None:
    numbers = [sequence_number(n) for n in (1, 9, 10, 12345, 10**15)]
    assert all(len(n) == 21 and n.isdigit() for n in numbers)
    assert numbers == sorted(numbers) == sorted(numbers, key=int)


def test_a_sequence_number_names_the_log_sequence_it_came_from() -> None:
    assert parse_sequence_number(sequence_number(42)) == 42


@pytest.mark.parametrize("text", ["x" * 21, "000000000000000000001", "12345678901234567890a",
                                  "\u0661" * 21])  # Arabic-Indic digits
def test_text_that_is_no_sequence_number_of_ours_names_nothing(text: str) -> None:
    assert parse_sequence_number(text) is None


# --- ARNs and shards ---


def test_a_stream_arn_names_its_table_and_label() -> None:
    assert parse_stream_arn(ARN) == ("things", "2026-01-02T03:04:05.678")


@pytest.mark.parametrize("arn", ["x" * 40, ARN + "x", ARN.replace("/stream/", "/index/"),
                                 "arn:aws:dynamodb:us-east-1:000000000000:table/things"])
def test_text_that_is_no_stream_arn_parses_to_nothing(arn: str) -> None:
    assert parse_stream_arn(arn) is None


def test_shard_ids_have_dynamodb_shape_and_are_stable() -> None:
    first = shard_id("ab" * 16, "2026-01-02T03:04:05.678")
    assert first == shard_id("ab" * 16, "2026-01-02T03:04:05.678")
    prefix, millis, suffix = first.split("-")
    assert prefix == "shardId" and len(millis) == 20 and len(suffix) == 8
    assert 28 <= len(first) <= 65


def test_a_shard_id_differs_between_tables_with_the_same_label() -> None:
    assert shard_id("ab" * 16, "2026-01-02T03:04:05.678") != shard_id("cd" * 16, "2026-01-02T03:04:05.678")


# --- stream epochs ---


def test_enabling_a_stream_starts_it_after_the_logs_last_record() -> None:
    spec = enabled_stream("NEW_IMAGE", "2026-01-02T03:04:05.678", 41)
    assert spec.enabled and spec.first_sequence == 41 and spec.last_sequence is None


def test_disabling_a_stream_ends_it_at_the_logs_last_record() -> None:
    spec = disabled_stream(enabled_stream("KEYS_ONLY", "2026-01-02T03:04:05.678", 5), 9, 100.0)
    assert (spec.enabled, spec.first_sequence, spec.last_sequence, spec.disabled_at) == (False, 5, 9, 100.0)
    assert Stream(table(stream=spec), spec).end == 9


def test_an_open_streams_shard_ends_at_the_logs_last_committed_record() -> None:
    spec = enabled_stream("KEYS_ONLY", "2026-01-02T03:04:05.678", 5)
    assert Stream(table(stream=spec), spec).top(12) == 12


def test_a_disabled_stream_is_listed_for_24_hours() -> None:
    spec = disabled_stream(enabled_stream("KEYS_ONLY", "2026-01-02T03:04:05.678", 0), 3, 1000.0)
    assert streams_of(table(stream=spec), 1000.0 + RETENTION_SECONDS - 1)
    assert not streams_of(table(stream=spec), 1000.0 + RETENTION_SECONDS)


def test_re_enabling_keeps_the_previous_stream_as_a_past_one() -> None:
    old = disabled_stream(enabled_stream("KEYS_ONLY", "2026-01-02T03:04:05.678", 0), 3, 1000.0)
    new = enabled_stream("NEW_IMAGE", "2026-01-02T03:05:00.000", 3)
    past = kept_past_streams(table(stream=old), new, 1001.0)
    assert past == (old,)
    labels = [s.label for s in streams_of(table(stream=new, past_streams=past), 1001.0)]
    assert labels == ["2026-01-02T03:04:05.678", "2026-01-02T03:05:00.000"]


def test_past_streams_older_than_the_retention_are_dropped() -> None:
    old = disabled_stream(enabled_stream("KEYS_ONLY", "2026-01-02T03:04:05.678", 0), 3, 1000.0)
    new = enabled_stream("NEW_IMAGE", "2026-01-02T03:05:00.000", 3)
    assert kept_past_streams(table(past_streams=(old,)), new, 1000.0 + RETENTION_SECONDS) == ()


def test_a_catalog_entry_with_past_streams_round_trips() -> None:
    old = disabled_stream(enabled_stream("KEYS_ONLY", "2026-01-02T03:04:05.678", 0), 3, 1000.0)
    new = enabled_stream("NEW_IMAGE", "2026-01-02T03:05:00.000", 3)
    definition = table(stream=new, past_streams=(old,))
    assert TableDefinition.from_json(definition.to_json()) == definition


def test_a_catalog_entry_from_before_stream_epochs_still_loads() -> None:
    plain = orjson.loads(table().to_json())
    plain.pop("past_streams")
    plain["stream"] = {"enabled": True, "view_type": "KEYS_ONLY", "label": "2026-01-02T03:04:05.678"}
    loaded = TableDefinition.from_json(orjson.dumps(plain).decode())
    assert loaded.stream == StreamSpec(True, "KEYS_ONLY", "2026-01-02T03:04:05.678")
    assert loaded.past_streams == ()


# --- iterators ---


def test_an_iterator_decodes_to_what_was_encoded() -> None:
    iterator = ShardIterator(ARN, 17, 1_700_000_000_000)
    assert decode_iterator(KEY, encode_iterator(KEY, iterator)) == iterator


def test_an_iterator_names_its_stream_arn_first_as_dynamodb_does() -> None:
    assert encode_iterator(KEY, ShardIterator(ARN, 1, 2)).startswith(ARN + "|1|")


@pytest.mark.parametrize("change", [
    lambda text: text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1],  # the MAC or payload
    lambda text: text.replace("things", "thing2"),  # another stream
    lambda text: text.replace("|1|", "|2|"),  # another version
    lambda text: text + "AAAA",
    lambda text: "garbage",
    lambda text: text.rsplit("|", 1)[0] + "|!!!",
])
def test_a_changed_iterator_is_invalid(change) -> None:  # type: ignore[no-untyped-def]
    text = change(encode_iterator(KEY, ShardIterator(ARN, 17, 1_700_000_000_000)))
    with pytest.raises(ValidationException, match=r"^Invalid ShardIterator$"):
        decode_iterator(KEY, text)


def test_an_iterator_from_another_engine_is_invalid() -> None:
    text = encode_iterator(b"o" * 32, ShardIterator(ARN, 17, 1))
    with pytest.raises(ValidationException):
        decode_iterator(KEY, text)


def test_an_iterator_is_fresh_for_15_minutes() -> None:
    iterator = ShardIterator(ARN, 1, 1_000_000)
    check_fresh(iterator, 1_000_000 + ITERATOR_LIFETIME_MS)
    with pytest.raises(ExpiredIteratorException):
        check_fresh(iterator, 1_000_000 + ITERATOR_LIFETIME_MS + 1)


def test_the_iterator_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = iterator_key(tmp_path)
    assert len(key) == 32 and iterator_key(tmp_path) == key
    assert (tmp_path / "streams.key").stat().st_mode & 0o077 == 0


# --- records ---


def test_a_record_without_an_old_image_is_an_insert() -> None:
    assert wire(stored(new={"pk": {"S": "a"}}))["eventName"] == "INSERT"


def test_a_record_with_both_images_is_a_modify() -> None:
    record = wire(stored(old={"pk": {"S": "a"}}, new={"pk": {"S": "a"}, "v": {"N": "1"}}))
    assert record["eventName"] == "MODIFY"


def test_a_record_without_a_new_image_is_a_remove() -> None:
    assert wire(stored(old={"pk": {"S": "a"}}))["eventName"] == "REMOVE"


def test_a_record_has_dynamodbs_envelope() -> None:
    record = wire(stored(new={"pk": {"S": "a"}}))
    assert set(record) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb"}
    assert (record["eventVersion"], record["eventSource"], record["awsRegion"]) == (
        "1.1", "aws:dynamodb", "us-east-1")
    assert len(record["eventID"]) == 32
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1_700_000_123
    assert record["dynamodb"]["SequenceNumber"] == sequence_number(7)


def test_the_event_id_is_the_same_each_time_a_record_is_read() -> None:
    item = {"pk": {"S": "a"}}
    assert wire(stored(new=item))["eventID"] == wire(stored(new=item))["eventID"]
    assert wire(stored(8, new=item))["eventID"] != wire(stored(new=item))["eventID"]


@pytest.mark.parametrize(("view", "members"), [
    ("KEYS_ONLY", {"Keys"}),
    ("NEW_IMAGE", {"Keys", "NewImage"}),
    ("OLD_IMAGE", {"Keys", "OldImage"}),
    ("NEW_AND_OLD_IMAGES", {"Keys", "NewImage", "OldImage"}),
])
def test_the_view_type_chooses_the_images(view: str, members: set[str]) -> None:
    old, new = {"pk": {"S": "a"}, "v": {"S": "old"}}, {"pk": {"S": "a"}, "v": {"S": "new"}}
    record = wire(stored(old=old, new=new), view)
    body = record["dynamodb"]
    assert {"Keys", "NewImage", "OldImage"} & set(body) == members
    assert body["StreamViewType"] == view


def test_size_bytes_counts_the_keys_and_the_images_sent() -> None:
    # pk="a": 2 + 1 bytes; v="new": 1 + 3 bytes; n=1.5: 1 + 3 bytes (DynamoDB's item size).
    item = {"pk": {"S": "a"}, "v": {"S": "new"}, "n": {"N": "1.5"}}
    assert wire(stored(new=item), "KEYS_ONLY")["dynamodb"]["SizeBytes"] == 3
    assert wire(stored(new=item), "NEW_IMAGE")["dynamodb"]["SizeBytes"] == 3 + 11
    assert wire(stored(old=item, new=item), "NEW_AND_OLD_IMAGES")["dynamodb"]["SizeBytes"] == 3 + 22


def test_a_ttl_delete_carries_the_service_identity() -> None:
    record = wire(stored(old={"pk": {"S": "a"}}, origin="ttl"))
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@pytest.mark.parametrize("origin", [None, "region:eu-west-1"])
def test_other_writes_carry_no_user_identity(origin: str | None) -> None:
    assert "userIdentity" not in wire(stored(new={"pk": {"S": "a"}}, origin=origin))


def test_images_are_spliced_as_stored() -> None:
    blob = b'{"pk":{"S":"a"},"n":{"N":"1.50"}}'  # whatever bytes storage holds go out unchanged
    record = StoredRecord(1, 0, b'{"pk":{"S":"a"}}', None, blob, None)
    assert blob in orjson.dumps(record_wire(record, "NEW_IMAGE", "us-east-1", "x"))


numbers = st.builds(
    lambda digits, exponent: check_number(Decimal(digits).scaleb(exponent)),
    st.integers(-(10**20), 10**20), st.integers(-30, 30),
)
scalars = st.one_of(st.text(max_size=4), numbers, st.binary(max_size=5), st.booleans(), st.none())
sets = st.one_of(
    st.frozensets(st.text(max_size=3), min_size=1, max_size=3),
    st.frozensets(numbers, min_size=1, max_size=3),
    st.frozensets(st.binary(max_size=4), min_size=1, max_size=3),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8,
)


@given(st.dictionaries(st.text(min_size=1, max_size=4), values, max_size=4))
def test_size_read_from_stored_json_is_dynamodbs_item_size(item: dict) -> None:
    assert stored_size(orjson.dumps(encode_item(item))) == item_size(item)
