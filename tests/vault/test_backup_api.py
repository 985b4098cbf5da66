"""The DynamoDB backup API against a real engine, on a folder vault and on an S3 vault (moto)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, unique_name
from tests.vault.backup_api_support import (
    VAULT_KINDS,
    backup,
    by_key,
    scan_all,
    start_vault_engine,
    wait_backup,
    wait_restored,
)


@pytest.fixture(scope="module", params=VAULT_KINDS)
def vault_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    moto_s3 = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    process = start_vault_engine(request.param, tmp_path_factory.mktemp(request.param), moto_s3)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def ddb(vault_engine: EngineProcess) -> Any:
    return vault_engine.client()


def _items_table(ddb: Any, count: int, **extra: Any) -> str:
    name = create_table(ddb, unique_name(), "pk", "S", "sk", "N", **extra)
    for start in range(0, count, 25):
        ddb.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": {"pk": {"S": f"p{i % 5}"}, "sk": {"N": str(i)},
                                     "g": {"S": f"g{i % 3}"}, "payload": {"S": "x" * (i % 40)}}}}
            for i in range(start, min(start + 25, count))
        ]})
    return name


def _create_indexed(ddb: Any, count: int) -> str:
    name = unique_name()
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"},
                              {"AttributeName": "g", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[{"IndexName": "by-g",
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        LocalSecondaryIndexes=[{"IndexName": "by-g-local",
                                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                              {"AttributeName": "g", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "ALL"}}],
    )
    for i in range(count):
        item = {"pk": {"S": f"p{i % 5}"}, "sk": {"N": str(i)}, "payload": {"S": "y" * (i % 30)}}
        if i % 4:  # some items are not in the indexes (sparse)
            item["g"] = {"S": f"g{i % 3}"}
        ddb.put_item(TableName=name, Item=item)
    return name


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def _message(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Message"]


# --- CreateBackup ---------------------------------------------------------------------------------


def test_create_backup_returns_creating_at_once_then_becomes_available(ddb: Any) -> None:
    table = _items_table(ddb, 200)
    started = time.monotonic()
    details = ddb.create_backup(TableName=table, BackupName="first-backup")["BackupDetails"]
    assert time.monotonic() - started < 1.0
    assert details["BackupStatus"] == "CREATING"
    assert details["BackupType"] == "USER"
    assert details["BackupName"] == "first-backup"
    assert details["BackupArn"].startswith(f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/backup/")
    described = wait_backup(ddb, details["BackupArn"])
    assert described["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    assert described["BackupDetails"]["BackupSizeBytes"] > 0


def test_backup_holds_the_table_as_of_the_call_not_later_writes(ddb: Any) -> None:
    table = _items_table(ddb, 300)
    before = by_key(scan_all(ddb, table), "pk", "sk")
    arn = ddb.create_backup(TableName=table, BackupName="as-of")["BackupDetails"]["BackupArn"]
    ddb.put_item(TableName=table, Item={"pk": {"S": "later"}, "sk": {"N": "1"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "p0"}, "sk": {"N": "0"}})
    ddb.update_item(TableName=table, Key={"pk": {"S": "p1"}, "sk": {"N": "1"}},
                    UpdateExpression="SET payload = :v", ExpressionAttributeValues={":v": {"S": "changed"}})
    assert wait_backup(ddb, arn)["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    target = unique_name("restored")
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    assert wait_restored(ddb, target) is not None
    assert by_key(scan_all(ddb, target), "pk", "sk") == before


def test_create_backup_of_a_missing_table_is_table_not_found(ddb: Any) -> None:
    with pytest.raises(ClientError) as error:
        ddb.create_backup(TableName="no-such-table", BackupName="nothing")
    assert _code(error) == "TableNotFoundException"
    assert _message(error) == "Table not found: no-such-table"


def test_backup_name_must_follow_dynamodb_rules(vault_engine: EngineProcess) -> None:
    from botocore.config import Config

    raw = vault_engine.client(config=Config(parameter_validation=False, retries={"max_attempts": 0}))
    with pytest.raises(ClientError) as error:
        raw.create_backup(TableName="some-table", BackupName="a!")
    assert _code(error) == "ValidationException"
    assert _message(error) == (
        "2 validation errors detected: Value 'a!' at 'backupName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3; Value 'a!' at 'backupName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    )


# --- DescribeBackup, ListBackups, DeleteBackup ------------------------------------------------------


def test_describe_backup_shows_the_source_table_and_its_indexes(ddb: Any) -> None:
    table = _create_indexed(ddb, 20)
    arn = backup(ddb, table)
    description = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
    source = description["SourceTableDetails"]
    assert source["TableName"] == table
    assert source["ItemCount"] == 20
    assert source["BillingMode"] == "PAY_PER_REQUEST"
    assert source["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}]
    features = description["SourceTableFeatureDetails"]
    assert [index["IndexName"] for index in features["GlobalSecondaryIndexes"]] == ["by-g"]
    assert [index["IndexName"] for index in features["LocalSecondaryIndexes"]] == ["by-g-local"]
    assert features["GlobalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_describe_backup_of_an_unknown_arn_is_backup_not_found(ddb: Any) -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/none/backup/01700000000000-0badc0de"
    with pytest.raises(ClientError) as error:
        ddb.describe_backup(BackupArn=arn)
    assert _code(error) == "BackupNotFoundException"


def test_list_backups_filters_by_table_and_pages_with_limit(ddb: Any) -> None:
    table = _items_table(ddb, 5)
    other = _items_table(ddb, 5)
    arns = [backup(ddb, table, f"backup-{i}") for i in range(3)]
    backup(ddb, other, "other")
    first = ddb.list_backups(TableName=table, Limit=2)
    assert [s["BackupArn"] for s in first["BackupSummaries"]] == arns[:2]
    assert first["LastEvaluatedBackupArn"] == arns[1]
    rest = ddb.list_backups(TableName=table, Limit=2, ExclusiveStartBackupArn=first["LastEvaluatedBackupArn"])
    assert [s["BackupArn"] for s in rest["BackupSummaries"]] == arns[2:]
    assert "LastEvaluatedBackupArn" not in rest
    summary = rest["BackupSummaries"][0]
    assert summary["TableName"] == table
    assert summary["BackupStatus"] == "AVAILABLE"
    assert summary["BackupType"] == "USER"


def test_list_backups_filters_by_creation_time_and_type(ddb: Any) -> None:
    table = _items_table(ddb, 3)
    early = backup(ddb, table, "early")
    time.sleep(0.05)
    cut = time.time()
    late = backup(ddb, table, "late")
    after = ddb.list_backups(TableName=table, TimeRangeLowerBound=cut)["BackupSummaries"]
    assert [s["BackupArn"] for s in after] == [late]
    before = ddb.list_backups(TableName=table, TimeRangeUpperBound=cut)["BackupSummaries"]
    assert [s["BackupArn"] for s in before] == [early]
    assert ddb.list_backups(TableName=table, BackupType="SYSTEM")["BackupSummaries"] == []
    assert len(ddb.list_backups(TableName=table, BackupType="ALL")["BackupSummaries"]) == 2


def test_delete_backup_answers_deleted_and_the_backup_is_gone(ddb: Any) -> None:
    table = _items_table(ddb, 10)
    arn = backup(ddb, table)
    deleted = ddb.delete_backup(BackupArn=arn)["BackupDescription"]
    assert deleted["BackupDetails"]["BackupStatus"] == "DELETED"
    assert arn not in [s["BackupArn"] for s in ddb.list_backups(TableName=table)["BackupSummaries"]]
    with pytest.raises(ClientError) as error:
        ddb.delete_backup(BackupArn=arn)
    assert _code(error) == "BackupNotFoundException"


def test_backups_outlive_their_table(ddb: Any) -> None:
    table = _items_table(ddb, 50)
    arn = backup(ddb, table)
    ddb.delete_table(TableName=table)
    assert arn in [s["BackupArn"] for s in ddb.list_backups(TableName=table)["BackupSummaries"]]
    target = unique_name("revived")
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    restored = wait_restored(ddb, target)
    assert restored is not None and restored["ItemCount"] == 50


# --- RestoreTableFromBackup -------------------------------------------------------------------------


def test_restore_is_creating_with_a_summary_then_active_with_the_same_items_and_indexes(ddb: Any) -> None:
    table = _create_indexed(ddb, 60)
    source_items = by_key(scan_all(ddb, table), "pk", "sk")
    arn = backup(ddb, table)
    target = unique_name("copy")
    answer = ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)["TableDescription"]
    assert answer["TableStatus"] == "CREATING"
    assert answer["RestoreSummary"]["SourceBackupArn"] == arn
    assert answer["RestoreSummary"]["SourceTableArn"].endswith(f":table/{table}")
    assert answer["RestoreSummary"]["RestoreInProgress"] is True
    restored = wait_restored(ddb, target)
    assert restored is not None
    assert restored["RestoreSummary"]["RestoreInProgress"] is False
    assert restored["ItemCount"] == 60
    assert by_key(scan_all(ddb, target), "pk", "sk") == source_items
    for index in ("by-g", "by-g-local"):
        source_index = scan_all(ddb, table, IndexName=index)
        assert sorted(map(repr, scan_all(ddb, target, IndexName=index))) == sorted(map(repr, source_index))
    counted = ddb.query(TableName=target, IndexName="by-g", KeyConditionExpression="g = :g",
                        ExpressionAttributeValues={":g": {"S": "g1"}}, Select="COUNT")["Count"]
    assert counted == sum(1 for i in range(60) if i % 4 and i % 3 == 1)


def test_restored_table_takes_reads_and_writes(ddb: Any) -> None:
    table = _create_indexed(ddb, 8)
    target = unique_name("writable")
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=backup(ddb, table))
    wait_restored(ddb, target)
    ddb.put_item(TableName=target, Item={"pk": {"S": "new"}, "sk": {"N": "1"}, "g": {"S": "g9"}})
    found = ddb.query(TableName=target, IndexName="by-g", KeyConditionExpression="g = :g",
                      ExpressionAttributeValues={":g": {"S": "g9"}})["Items"]
    assert found == [{"pk": {"S": "new"}, "sk": {"N": "1"}, "g": {"S": "g9"}}]


def test_restore_does_not_carry_stream_ttl_tags_or_deletion_protection(ddb: Any) -> None:
    table = create_table(
        ddb, unique_name(), StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        Tags=[{"Key": "team", "Value": "data"}], DeletionProtectionEnabled=True,
    )
    ddb.update_time_to_live(TableName=table,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    target = unique_name("plain")
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=backup(ddb, table))
    restored = wait_restored(ddb, target)
    assert restored is not None
    assert "StreamSpecification" not in restored and "LatestStreamArn" not in restored
    assert restored["DeletionProtectionEnabled"] is False
    ttl = ddb.describe_time_to_live(TableName=target)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"
    assert ddb.list_tags_of_resource(ResourceArn=restored["TableArn"])["Tags"] == []
    ddb.update_table(TableName=table, DeletionProtectionEnabled=False)


def test_restore_overrides_billing_mode_and_replaces_global_indexes(ddb: Any) -> None:
    table = _create_indexed(ddb, 12)
    target = unique_name("override")
    ddb.restore_table_from_backup(
        TargetTableName=target, BackupArn=backup(ddb, table),
        BillingModeOverride="PROVISIONED",
        ProvisionedThroughputOverride={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        GlobalSecondaryIndexOverride=[],
    )
    restored = wait_restored(ddb, target)
    assert restored is not None
    assert restored["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert restored["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    assert "GlobalSecondaryIndexes" not in restored
    assert [index["IndexName"] for index in restored["LocalSecondaryIndexes"]] == ["by-g-local"]


def test_restore_into_an_existing_table_is_table_already_exists(ddb: Any) -> None:
    table = _items_table(ddb, 3)
    arn = backup(ddb, table)
    with pytest.raises(ClientError) as error:
        ddb.restore_table_from_backup(TargetTableName=table, BackupArn=arn)
    assert _code(error) == "TableAlreadyExistsException"
    assert _message(error) == f"Table already exists: {table}"


def test_restore_of_an_unknown_backup_is_backup_not_found(ddb: Any) -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/none/backup/01700000000000-0badc0de"
    with pytest.raises(ClientError) as error:
        ddb.restore_table_from_backup(TargetTableName=unique_name(), BackupArn=arn)
    assert _code(error) == "BackupNotFoundException"
