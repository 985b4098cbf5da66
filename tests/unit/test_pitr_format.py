"""The PITR archive's objects (vault/pitr_format.py): segment names and bodies, settings."""

from __future__ import annotations

import orjson
import pytest

from tablekeeper.engine.storage.base import StoredRecord
from tablekeeper.vault.format import BackupDamaged
from tablekeeper.vault.pitr_format import (
    SegmentRef,
    Settings,
    decode_segment,
    encode_segment,
    segment_name,
    segments_prefix,
    settings_prefix,
    table_prefix,
)

TABLE = "a" * 32
OTHER = "b" * 32


def _record(sequence: int, timestamp_ms: int, *, old: bytes | None = None, new: bytes | None = b"{}",
            origin: str | None = None) -> StoredRecord:
    keys = orjson.dumps({"pk": {"S": f"k{sequence}"}})
    return StoredRecord(sequence, timestamp_ms, keys, old, new, origin)


def _records() -> list[StoredRecord]:
    return [
        _record(41, 1_700_000_000_100, new=b'{"pk":{"S":"k41"},"n":{"N":"1"}}'),
        _record(42, 1_700_000_000_950, old=b'{"pk":{"S":"k42"}}', new=None, origin="ttl"),
        _record(43, 1_700_000_001_000, old=b'{"pk":{"S":"k43"}}',
                new=b'{"pk":{"S":"k43"},"s":{"S":"\xc3\xa9"}}', origin="eu-west-1"),
    ]


def _ref(records: list[StoredRecord], table_id: str = TABLE) -> SegmentRef:
    ref = SegmentRef.parse(table_id, segment_name(table_id, records))
    assert ref is not None
    return ref


# --- names -------------------------------------------------------------------------------------


def test_a_segment_is_named_for_its_sequence_and_time_ranges() -> None:
    name = segment_name(TABLE, _records())
    assert name == (f"pitr/{TABLE}/segments/{41:020d}-{43:020d}."
                    f"{1_700_000_000_100:015d}-{1_700_000_001_000:015d}")
    assert SegmentRef.parse(TABLE, name) == SegmentRef(41, 43, 1_700_000_000_100, 1_700_000_001_000, name)


def test_a_segments_time_range_is_its_records_oldest_and_newest_time() -> None:
    records = [_record(1, 500), _record(2, 400), _record(3, 450)]  # a clock that stepped back
    ref = _ref(records)
    assert (ref.first_ms, ref.last_ms) == (400, 500)


def test_segment_names_sort_in_sequence_order() -> None:
    names = [segment_name(TABLE, [_record(s, 10 * s)]) for s in (9, 10, 100, 1)]
    assert sorted(names) == [segment_name(TABLE, [_record(s, 10 * s)]) for s in (1, 9, 10, 100)]


@pytest.mark.parametrize("tail", [
    "",
    "00000000000000000001-00000000000000000002",  # no time range
    "00000000000000000001-00000000000000000002.000000000000001",
    "0000000000000000001-00000000000000000002.000000000000001-000000000000002",  # 19 digits
    "00000000000000000001-00000000000000000002.000000000000001-000000000000002.tmp",
    "0000000000000000000x-00000000000000000002.000000000000001-000000000000002",
    "00000000000000000001_00000000000000000002.000000000000001-000000000000002",
])
def test_a_malformed_segment_name_parses_to_none(tail: str) -> None:
    assert SegmentRef.parse(TABLE, segments_prefix(TABLE) + tail) is None


def test_a_segment_name_of_another_table_or_folder_parses_to_none() -> None:
    tail = "00000000000000000001-00000000000000000002.000000000000001-000000000000002"
    assert SegmentRef.parse(TABLE, segments_prefix(OTHER) + tail) is None
    assert SegmentRef.parse(TABLE, settings_prefix(TABLE) + tail) is None
    assert SegmentRef.parse(TABLE, tail) is None


def test_archive_prefixes_nest_under_the_table() -> None:
    assert table_prefix(TABLE) == f"pitr/{TABLE}/"
    assert segments_prefix(TABLE).startswith(table_prefix(TABLE))
    assert settings_prefix(TABLE).startswith(table_prefix(TABLE))
    assert segments_prefix(TABLE) != settings_prefix(TABLE)


# --- segment bodies ----------------------------------------------------------------------------


def test_a_segment_round_trips_its_records() -> None:
    records = _records()
    assert decode_segment(encode_segment(TABLE, records), _ref(records), TABLE) == records


def test_a_segment_indexes_the_first_record_of_each_second() -> None:
    index = orjson.loads(encode_segment(TABLE, _records()))["index"]
    assert index == [[1_700_000_000, 0], [1_700_000_001, 2]]


def test_a_segment_decoded_as_another_tables_is_damaged() -> None:
    records = _records()
    with pytest.raises(BackupDamaged, match="does not hold the records its name says"):
        decode_segment(encode_segment(OTHER, records), _ref(records), TABLE)


def test_a_segment_decoded_under_another_name_is_damaged() -> None:
    records = _records()
    elsewhere = _ref([_record(44, 1_700_000_001_100), _record(45, 1_700_000_001_200),
                      _record(46, 1_700_000_001_300)])
    with pytest.raises(BackupDamaged) as raised:
        decode_segment(encode_segment(TABLE, records), elsewhere, TABLE)
    assert raised.value.object_key == elsewhere.name


def test_a_segment_with_fewer_records_than_its_name_says_is_damaged() -> None:
    records = _records()
    with pytest.raises(BackupDamaged):
        decode_segment(encode_segment(TABLE, records[:2]), _ref(records), TABLE)


def test_a_segment_with_a_hole_in_its_sequence_numbers_is_damaged() -> None:
    records = [_record(1, 10), _record(2, 20), _record(4, 40)]
    with pytest.raises(BackupDamaged):
        decode_segment(encode_segment(TABLE, records), _ref(records), TABLE)


def test_a_segment_whose_times_differ_from_its_name_is_damaged() -> None:
    records = _records()
    shifted = [StoredRecord(r.sequence, r.timestamp_ms + 5_000, r.keys, r.old, r.new, r.origin)
               for r in records]
    with pytest.raises(BackupDamaged, match="does not hold the records its name says"):
        decode_segment(encode_segment(TABLE, shifted), _ref(records), TABLE)


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    b'{"table": "x"}',
    b'{"records": []}',
    b'{"table": "' + TABLE.encode() + b'", "records": [[41, 1]]}',
])
def test_a_segment_that_does_not_parse_is_damaged(body: bytes) -> None:
    with pytest.raises(BackupDamaged):
        decode_segment(body, _ref(_records()), TABLE)


# --- settings ----------------------------------------------------------------------------------


def _settings(**changes: object) -> Settings:
    values: dict[str, object] = dict(
        table_id=TABLE, table_name="orders", table_arn="arn:aws:dynamodb:us-east-1:000000000000:table/orders",
        enabled=True, period_days=7, window_start_ms=1_700_000_000_000, changed_ms=1_700_000_500_000,
    )
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("settings", [
    _settings(),
    _settings(enabled=False, period_days=35),
    _settings(deleted_ms=1_700_000_900_000),
])
def test_settings_round_trip(settings: Settings) -> None:
    assert Settings.from_body(settings.to_body(), settings.object_name()) == settings


def test_settings_are_named_under_the_table_for_their_change_time() -> None:
    name = _settings().object_name()
    assert name.startswith(f"{settings_prefix(TABLE)}{1_700_000_500_000:015d}-")


def test_two_settings_of_the_same_millisecond_get_distinct_names() -> None:
    assert _settings().object_name() != _settings().object_name()


def test_the_newest_settings_sort_last() -> None:
    names = [_settings(changed_ms=ms).object_name() for ms in (999, 1_000, 10_000)]
    assert sorted(names) == names


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"table_id": "x"}',
                                  _settings().to_body()[:-1] + b',"surprise":1}'])
def test_settings_that_do_not_parse_are_damaged(body: bytes) -> None:
    with pytest.raises(BackupDamaged, match="PITR settings do not parse") as raised:
        Settings.from_body(body, "pitr/x/settings/1")
    assert raised.value.object_key == "pitr/x/settings/1"
