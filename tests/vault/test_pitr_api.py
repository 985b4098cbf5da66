"""Point-in-time recovery through DynamoDB's API, against a real engine, on both vault kinds.

UpdateContinuousBackups, DescribeContinuousBackups and
RestoreTableToPointInTime with boto3; the archiver ships every 0.1 s.  A
restore to T is checked against the table's full content recorded at T (a
mark kept a few milliseconds clear of any write: record times are whole
milliseconds).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, unique_name
from tests.vault.backup_api_support import VAULT_KINDS, start_vault_engine, wait_restored
from tests.vault.conftest import MotoS3
from tests.vault.pitr_support import (
    Content,
    Marks,
    archive_keys,
    check_marks,
    content,
    disable,
    earliest,
    enable,
    eventually,
    internal_table_id,
    latest,
    pitr_description,
    restart,
    restore_at,
    restore_many,
    wait_latest_after,
)

PITR_ARGS = ("--pitr-interval", "0.1")


@dataclass
class Vaulted:
    process: EngineProcess
    moto_s3: MotoS3 | None


@pytest.fixture(scope="module", params=VAULT_KINDS)
def vaulted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vaulted]:
    moto_s3 = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    process = start_vault_engine(request.param, tmp_path_factory.mktemp(request.param), moto_s3, *PITR_ARGS)
    yield Vaulted(process, moto_s3)
    process.stop()


@pytest.fixture(scope="module")
def ddb(vaulted: Vaulted) -> Any:
    return vaulted.process.client()


@pytest.fixture(scope="module")
def raw(vaulted: Vaulted) -> Any:
    """A client without botocore's parameter validation, to send what DynamoDB must refuse."""
    return vaulted.process.client(config=Config(parameter_validation=False, retries={"max_attempts": 0}))


@dataclass(frozen=True)
class Enabled:
    table: str
    before: float  # just before UpdateContinuousBackups was sent
    after: float  # just after its answer came
    answer: dict[str, Any]  # its ContinuousBackupsDescription


def _enabled(ddb: Any, period_days: int | None = None) -> Enabled:
    table = create_table(ddb, unique_name())
    before = time.time()
    answer = enable(ddb, table, period_days)
    return Enabled(table, before, time.time(), answer)


@pytest.fixture(scope="module")
def default(ddb: Any) -> Enabled:
    """A table whose PITR was enabled without a recovery period; never written to."""
    return _enabled(ddb)


@pytest.fixture(scope="module")
def nine_days(ddb: Any) -> Enabled:
    return _enabled(ddb, period_days=9)


@pytest.fixture(scope="module")
def shared(ddb: Any) -> str:
    """A PITR table for tests that only restore it, or add items and restore them (empty at enabling)."""
    table = _enabled(ddb).table
    for i in range(5):
        _put(ddb, table, f"k{i}", v={"N": str(i)})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "k0"}})
    return table


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def _pitr_table(ddb: Any, **extra: Any) -> str:
    table = create_table(ddb, unique_name(), **extra)
    enable(ddb, table)
    return table


def _put(ddb: Any, table: str, pk: str, **attributes: Any) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, **attributes})


# --- describe and update ---------------------------------------------------------------------


def test_describe_of_a_table_without_pitr_shows_backups_enabled_and_pitr_disabled(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    assert ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"] == {
        "ContinuousBackupsStatus": "ENABLED",
        "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
    }


def test_enabling_without_a_recovery_period_uses_35_days(ddb: Any, default: Enabled) -> None:
    assert default.answer["ContinuousBackupsStatus"] == "ENABLED"
    assert default.answer["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert default.answer["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 35
    assert pitr_description(ddb, default.table)["RecoveryPeriodInDays"] == 35


def test_enabling_with_a_recovery_period_reports_it(ddb: Any, nine_days: Enabled) -> None:
    assert nine_days.answer["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 9
    assert pitr_description(ddb, nine_days.table)["RecoveryPeriodInDays"] == 9


def test_enabling_again_without_a_period_keeps_the_window_and_its_period(
    ddb: Any, nine_days: Enabled,
) -> None:
    start = earliest(ddb, nine_days.table)
    again = ddb.update_continuous_backups(TableName=nine_days.table, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})["ContinuousBackupsDescription"]
    assert again["PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 9
    assert earliest(ddb, nine_days.table) == start


@pytest.mark.parametrize(("days", "constraint"), [
    (0, "Member must have value greater than or equal to 1"),
    (36, "Member must have value less than or equal to 35"),
])
def test_a_recovery_period_outside_1_to_35_days_is_a_validation_exception(
    ddb: Any, raw: Any, days: int, constraint: str,
) -> None:
    table = create_table(ddb, unique_name())
    with pytest.raises(ClientError) as raised:
        raw.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": days})
    assert _error(raised) == ("ValidationException", (
        f"1 validation error detected: Value '{days}' at "
        "'pointInTimeRecoverySpecification.recoveryPeriodInDays' "
        f"failed to satisfy constraint: {constraint}"))
    assert pitr_description(ddb, table) == {"PointInTimeRecoveryStatus": "DISABLED"}


@pytest.mark.parametrize("operation", ["describe", "update", "restore"])
def test_pitr_operations_on_an_unknown_table_are_table_not_found(ddb: Any, operation: str) -> None:
    missing = unique_name("missing")
    calls = {
        "describe": lambda: ddb.describe_continuous_backups(TableName=missing),
        "update": lambda: ddb.update_continuous_backups(
            TableName=missing, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}),
        "restore": lambda: ddb.restore_table_to_point_in_time(
            SourceTableName=missing, TargetTableName=unique_name(), UseLatestRestorableTime=True),
    }
    with pytest.raises(ClientError) as raised:
        calls[operation]()
    assert _error(raised) == ("TableNotFoundException", f"Table not found: {missing}")


def test_the_window_starts_when_pitr_is_enabled(ddb: Any, default: Enabled) -> None:
    start = earliest(ddb, default.table)
    assert start is not None and math.floor(default.before * 1000) / 1000 <= start <= default.after
    found = latest(ddb, default.table)
    assert found is not None and start <= found


def test_a_shorter_recovery_period_is_reported_at_once(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    answer = ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 3})
    reported = answer["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert reported["RecoveryPeriodInDays"] == 3
    assert pitr_description(ddb, table)["RecoveryPeriodInDays"] == 3


def test_latest_restorable_time_trails_the_newest_write_by_under_2_seconds(ddb: Any, shared: str) -> None:
    _put(ddb, shared, "fresh")
    written = time.time()
    wait_latest_after(ddb, shared, written, timeout=2.0)
    time.sleep(0.5)  # at rest: the archiver keeps proving the archive complete
    found = latest(ddb, shared)
    assert found is not None and time.time() - found < 2.0


# --- restore to a time -----------------------------------------------------------------------


def test_restores_to_several_times_give_exactly_the_table_as_of_each(ddb: Any) -> None:
    table = _pitr_table(ddb, range_key="sk", range_type="N")
    marks = Marks(ddb, table, keys=("pk", "sk"))
    marks.mark()  # empty
    ddb.batch_write_item(RequestItems={table: [
        {"PutRequest": {"Item": {"pk": {"S": f"p{i % 3}"}, "sk": {"N": str(i)}, "n": {"N": "1"}}}}
        for i in range(12)]})
    marks.mark()
    ddb.update_item(TableName=table, Key={"pk": {"S": "p0"}, "sk": {"N": "0"}},
                    UpdateExpression="SET s = :s ADD n :one", ExpressionAttributeValues={
                        ":s": {"S": "set"}, ":one": {"N": "1"}})
    ddb.update_item(TableName=table, Key={"pk": {"S": "p1"}, "sk": {"N": "1"}}, UpdateExpression="REMOVE n")
    ddb.delete_item(TableName=table, Key={"pk": {"S": "p2"}, "sk": {"N": "2"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "p0"}, "sk": {"N": "3"}, "replaced": {"BOOL": True}})
    marks.mark()
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": {"S": "tx"}, "sk": {"N": "1"}}}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": "p0"}, "sk": {"N": "0"}},
                    "UpdateExpression": "ADD n :ten", "ExpressionAttributeValues": {":ten": {"N": "10"}}}},
        {"Delete": {"TableName": table, "Key": {"pk": {"S": "p1"}, "sk": {"N": "4"}}}},
        {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "p2"}, "sk": {"N": "5"}},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ])
    marks.mark()
    ddb.batch_write_item(RequestItems={table: [
        {"DeleteRequest": {"Key": {"pk": {"S": f"p{i % 3}"}, "sk": {"N": str(i)}}}} for i in range(6, 12)
    ] + [{"PutRequest": {"Item": {"pk": {"S": "late"}, "sk": {"N": str(i)}}}} for i in range(3)]})
    marks.mark()
    ddb.delete_item(TableName=table, Key={"pk": {"S": "nothing"}, "sk": {"N": "0"}})  # changes nothing
    ddb.put_item(TableName=table, Item={"pk": {"S": "tx"}, "sk": {"N": "1"}})  # the same item again
    marks.mark()
    assert len({len(expected) for _, expected in marks.taken}) > 3  # the marks differ
    check_marks(marks, keys=("pk", "sk"))


def test_a_restore_to_the_latest_time_made_during_writes_equals_one_made_later(
    ddb: Any, vaulted: Vaulted,
) -> None:
    # regression: records timestamped before the archive was called complete were still committing,
    # so an early restore to LatestRestorableDateTime lacked writes a later one had
    table = _pitr_table(ddb)
    stop = threading.Event()

    def write(writer: int) -> None:
        client = vaulted.process.client()
        for i in range(100_000):
            if stop.is_set():
                return
            _put(client, table, f"{writer}-{i}")

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    early = []
    try:
        for _ in range(8):
            moment = latest(ddb, table)
            assert moment is not None
            target = unique_name("early")
            ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                               RestoreDateTime=moment)
            early.append((moment, target))
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    wait_latest_after(ddb, table, time.time())
    later = restore_many(ddb, table, [moment for moment, _ in early])
    for (moment, target), expected in zip(early, later, strict=True):
        assert wait_restored(ddb, target) is not None
        assert content(ddb, target) == expected, f"restores to {moment}"


def test_use_latest_restorable_time_restores_the_newest_writes(ddb: Any, shared: str) -> None:
    _put(ddb, shared, "newest", v={"N": "99"})
    ddb.delete_item(TableName=shared, Key={"pk": {"S": "k1"}})
    expected = content(ddb, shared)
    wait_latest_after(ddb, shared, time.time())
    assert restore_at(ddb, shared, None) == expected


def test_a_restore_time_before_the_earliest_is_invalid_restore_time(ddb: Any, shared: str) -> None:
    start = earliest(ddb, shared)
    assert start is not None
    with pytest.raises(ClientError) as raised:
        ddb.restore_table_to_point_in_time(SourceTableName=shared, TargetTableName=unique_name(),
                                           RestoreDateTime=start - 1)
    assert _error(raised)[0] == "InvalidRestoreTimeException"


def test_a_restore_time_after_the_latest_is_invalid_restore_time(ddb: Any, shared: str) -> None:
    with pytest.raises(ClientError) as raised:
        ddb.restore_table_to_point_in_time(SourceTableName=shared, TargetTableName=unique_name(),
                                           RestoreDateTime=time.time() + 60)
    assert _error(raised)[0] == "InvalidRestoreTimeException"


def test_the_window_edges_themselves_restore(ddb: Any, shared: str) -> None:
    _put(ddb, shared, "edge")
    wait_latest_after(ddb, shared, time.time())
    start, end = earliest(ddb, shared), latest(ddb, shared)
    assert start is not None and end is not None
    assert restore_at(ddb, shared, start) == {}  # empty when PITR was enabled
    assert restore_at(ddb, shared, end) == content(ddb, shared)


def test_restore_of_a_table_without_pitr_is_point_in_time_recovery_unavailable(ddb: Any) -> None:
    table = create_table(ddb, unique_name())
    with pytest.raises(ClientError) as raised:
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=unique_name(),
                                           UseLatestRestorableTime=True)
    assert _error(raised) == ("PointInTimeRecoveryUnavailableException",
                              f"Point in time recovery is not enabled for table '{table}'")


def test_disabling_drops_the_window_and_the_archive(ddb: Any, vaulted: Vaulted) -> None:
    table = _pitr_table(ddb)
    _put(ddb, table, "a")
    wait_latest_after(ddb, table, time.time())
    table_id = internal_table_id(ddb, table)
    assert archive_keys(vaulted.process, vaulted.moto_s3, table_id)
    assert disable(ddb, table)["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}
    assert pitr_description(ddb, table) == {"PointInTimeRecoveryStatus": "DISABLED"}
    with pytest.raises(ClientError) as raised:
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=unique_name(),
                                           UseLatestRestorableTime=True)
    assert _error(raised)[0] == "PointInTimeRecoveryUnavailableException"
    eventually(lambda: not archive_keys(vaulted.process, vaulted.moto_s3, table_id),
               "the archive of a table whose PITR was disabled is still in the vault")


def test_re_enabling_starts_a_new_window_that_refuses_times_before_it(ddb: Any) -> None:
    table = _pitr_table(ddb)
    _put(ddb, table, "old")
    time.sleep(0.01)
    old = time.time()
    wait_latest_after(ddb, table, old)
    disable(ddb, table)
    _put(ddb, table, "while-off")
    before = time.time()
    enable(ddb, table)
    after = time.time()
    start = earliest(ddb, table)
    assert start is not None and math.floor(before * 1000) / 1000 <= start <= after
    with pytest.raises(ClientError) as raised:
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=unique_name(),
                                           RestoreDateTime=old)
    assert _error(raised)[0] == "InvalidRestoreTimeException"
    _put(ddb, table, "new")
    expected = content(ddb, table)
    wait_latest_after(ddb, table, time.time())
    assert restore_at(ddb, table, None) == expected
    assert set(expected) == {("old",), ("while-off",), ("new",)}


def test_re_enabling_at_once_after_disabling_keeps_the_new_windows_archive(ddb: Any) -> None:
    table = _pitr_table(ddb)
    _put(ddb, table, "old")
    wait_latest_after(ddb, table, time.time())
    disable(ddb, table)
    ddb.update_continuous_backups(TableName=table,  # while the old window's archive is being dropped
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    marks = Marks(ddb, table)
    for i in range(20):  # shipped at once, while the new window's first base is being written
        _put(ddb, table, f"new{i}")
        if i % 5 == 4:
            time.sleep(0.1)
    wait_latest_after(ddb, table, time.time())
    marks.mark()
    time.sleep(0.5)  # the drop has had every chance to reach the new window's objects
    check_marks(marks)


def test_a_restored_table_is_creating_then_active_with_a_restore_summary(ddb: Any, shared: str) -> None:
    table = shared
    marks = Marks(ddb, table)
    moment = marks.mark()
    wait_latest_after(ddb, table, moment)
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    target = unique_name("restored")
    started = ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                                 RestoreDateTime=moment)["TableDescription"]
    assert started["TableName"] == target
    assert started["TableStatus"] == "CREATING"
    summary = started["RestoreSummary"]
    assert summary["SourceTableArn"] == arn
    assert summary["RestoreInProgress"] is True
    assert summary["RestoreDateTime"].timestamp() == pytest.approx(math.floor(moment * 1000) / 1000, abs=1e-6)
    done = wait_restored(ddb, target)
    assert done is not None
    assert done["RestoreSummary"]["RestoreInProgress"] is False
    assert done["RestoreSummary"]["SourceTableArn"] == arn
    assert done["RestoreSummary"]["RestoreDateTime"] == summary["RestoreDateTime"]
    assert content(ddb, target) == marks.taken[0][1]


def test_a_restored_table_does_not_inherit_pitr(ddb: Any, shared: str) -> None:
    target = unique_name("restored")
    ddb.restore_table_to_point_in_time(SourceTableName=shared, TargetTableName=target,
                                       UseLatestRestorableTime=True)
    assert wait_restored(ddb, target) is not None
    assert pitr_description(ddb, target) == {"PointInTimeRecoveryStatus": "DISABLED"}


def test_an_empty_global_index_override_restores_without_global_indexes(ddb: Any) -> None:
    table = unique_name()
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g",
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )
    enable(ddb, table)
    for i in range(4):
        _put(ddb, table, f"k{i}", g={"S": f"g{i % 2}"})
    expected = content(ddb, table)
    wait_latest_after(ddb, table, time.time())
    target = unique_name("restored")
    ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                       UseLatestRestorableTime=True, GlobalSecondaryIndexOverride=[])
    described = wait_restored(ddb, target)
    assert described is not None and "GlobalSecondaryIndexes" not in described
    assert content(ddb, target) == expected


def test_a_billing_mode_override_applies_to_the_restored_table(ddb: Any, shared: str) -> None:
    target = unique_name("restored")
    ddb.restore_table_to_point_in_time(
        SourceTableName=shared, TargetTableName=target, UseLatestRestorableTime=True,
        BillingModeOverride="PROVISIONED",
        ProvisionedThroughputOverride={"ReadCapacityUnits": 4, "WriteCapacityUnits": 2})
    described = wait_restored(ddb, target)
    assert described is not None
    assert described["ProvisionedThroughput"]["ReadCapacityUnits"] == 4
    assert described["ProvisionedThroughput"]["WriteCapacityUnits"] == 2
    assert described.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"


def test_pitr_bases_never_appear_in_list_backups(ddb: Any, shared: str) -> None:
    table = shared  # its base is written: it is restorable
    for backup_type in ("USER", "SYSTEM", "AWS_BACKUP", "ALL"):
        for scope in ({"TableName": table}, {}):
            summaries = ddb.list_backups(BackupType=backup_type, **scope)["BackupSummaries"]
            assert not [s for s in summaries if s["BackupName"].endswith("$PITR")
                        or s["BackupType"] not in ("USER", "SYSTEM", "AWS_BACKUP")], (backup_type, scope)
            assert not [s for s in summaries if s["TableName"] == table], (backup_type, scope)


def test_a_restore_may_name_its_source_by_arn(ddb: Any, shared: str) -> None:
    table = shared
    expected = content(ddb, table)
    wait_latest_after(ddb, table, time.time())
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    target = unique_name("restored")
    started = ddb.restore_table_to_point_in_time(SourceTableArn=arn, TargetTableName=target,
                                                 UseLatestRestorableTime=True)
    assert started["TableDescription"]["RestoreSummary"]["SourceTableArn"] == arn
    assert wait_restored(ddb, target) is not None
    assert content(ddb, target) == expected


@pytest.mark.parametrize(("when", "message"), [
    ({"UseLatestRestorableTime": True, "RestoreDateTime": 1_700_000_000},
     "Only one of RestoreDateTime and UseLatestRestorableTime can be specified"),
    ({}, "Either RestoreDateTime or UseLatestRestorableTime must be specified"),
])
def test_both_or_neither_restore_time_choices_are_a_validation_exception(
    raw: Any, shared: str, when: dict[str, Any], message: str,
) -> None:
    table = shared
    with pytest.raises(ClientError) as raised:
        raw.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=unique_name(), **when)
    assert _error(raised) == ("ValidationException", message)


def test_both_or_neither_source_are_a_validation_exception(ddb: Any, raw: Any, shared: str) -> None:
    table = shared
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    for source in ({"SourceTableName": table, "SourceTableArn": arn}, {}):
        with pytest.raises(ClientError) as raised:
            raw.restore_table_to_point_in_time(TargetTableName=unique_name(), UseLatestRestorableTime=True,
                                               **source)
        assert _error(raised) == ("ValidationException",
                                  "Exactly one of SourceTableArn and SourceTableName must be specified")


def test_a_restore_onto_an_existing_table_is_table_already_exists(ddb: Any, shared: str) -> None:
    table = shared
    with pytest.raises(ClientError) as raised:
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=table,
                                           UseLatestRestorableTime=True)
    assert _error(raised)[0] == "TableAlreadyExistsException"


# --- restarts --------------------------------------------------------------------------------


@pytest.fixture(params=VAULT_KINDS)
def fresh(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vaulted]:
    """An engine of its own, for tests that stop or kill it; stopped at the end whatever it is."""
    moto_s3 = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    vaulted = Vaulted(start_vault_engine(request.param, tmp_path_factory.mktemp(request.param), moto_s3,
                                         *PITR_ARGS), moto_s3)
    yield vaulted
    vaulted.process.stop()


def test_archiving_continues_after_a_clean_restart(fresh: Vaulted) -> None:
    ddb = fresh.process.client()
    table = _pitr_table(ddb)
    marks = Marks(ddb, table)
    for i in range(10):
        _put(ddb, table, f"before{i}")
    marks.mark()
    assert fresh.process.stop() == 0
    fresh.process = restart(fresh.process, fresh.moto_s3)
    ddb = marks.ddb = fresh.process.client()
    ddb.delete_item(TableName=table, Key={"pk": {"S": "before0"}})
    for i in range(10):
        _put(ddb, table, f"after{i}")
    marks.mark()
    check_marks(marks)


def test_a_window_whose_first_base_was_cut_short_starts_with_the_base_taken_after_it(fresh: Vaulted) -> None:
    # regression: the window kept the enable time, where no base could restore from
    ddb = fresh.process.client()
    table = create_table(ddb, unique_name())
    _put(ddb, table, "a")
    ddb.update_continuous_backups(TableName=table,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    _put(ddb, table, "b")
    assert fresh.process.stop() == 0  # most likely while the first base is being written
    fresh.process = restart(fresh.process, fresh.moto_s3)
    ddb = fresh.process.client()
    wait_latest_after(ddb, table, time.time())
    start = earliest(ddb, table)
    assert start is not None
    assert restore_at(ddb, table, start) == content(ddb, table)


@dataclass
class Stream:
    """One writer putting new keys and deleting older ones, noting when each write went and came back."""

    ddb: Any
    table: str
    sent: list[float] = field(default_factory=list)
    acked: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def operation(i: int) -> tuple[str, str]:
        return ("delete", f"k{i - 5:05d}") if i % 4 == 3 and i >= 5 else ("put", f"k{i:05d}")

    def run(self) -> None:
        for i in range(100_000):
            if self.stop.is_set():
                return
            kind, key = self.operation(i)
            self.sent.append(time.time())
            try:
                if kind == "put":
                    _put(self.ddb, self.table, key, i={"N": str(i)})
                else:
                    self.ddb.delete_item(TableName=self.table, Key={"pk": {"S": key}})
            except Exception:  # the engine was killed under this write: unacknowledged
                return
            self.acked.append(time.time())

    def state(self, count: int) -> Content:
        """The table after the first ``count`` writes."""
        table: Content = {}
        for i in range(count):
            kind, key = self.operation(i)
            if kind == "put":
                table[(key,)] = {"pk": {"S": key}, "i": {"N": str(i)}}
            else:
                table.pop((key,), None)
        return table

    def possible(self, moment: float) -> list[Content]:
        """What the table may be as of ``moment``: every write acknowledged by then is in it, none
        sent after it (record times are whole milliseconds), those in between may be."""
        ms = math.floor(moment * 1000)
        surely = sum(1 for t in self.acked if math.floor(t * 1000) <= ms)
        maybe = sum(1 for t in self.sent if math.floor(t * 1000) <= ms)
        return [self.state(count) for count in range(surely, maybe + 1)]


def test_after_kill_9_every_acknowledged_write_restores_with_no_gap(fresh: Vaulted) -> None:
    ddb = fresh.process.client()
    table = _pitr_table(ddb)
    stream = Stream(fresh.process.client(), table)
    writer = threading.Thread(target=stream.run)
    writer.start()
    time.sleep(0.8)
    fresh.process.kill()
    writer.join(timeout=30)
    assert len(stream.acked) > 50, "the write stream hardly ran"
    during = [stream.sent[len(stream.sent) * n // 4] for n in (1, 2, 3)]

    fresh.process = restart(fresh.process, fresh.moto_s3)
    ddb = fresh.process.client()
    now = content(ddb, table)  # the writes that survived: every acknowledged one, maybe the last sent
    assert now in stream.possible(time.time())
    wait_latest_after(ddb, table, time.time())
    latest_restored, *restored = restore_many(ddb, table, [None, *during])
    assert latest_restored == now
    for moment, got in zip(during, restored, strict=True):
        assert got in stream.possible(moment), f"restore to {moment}"
