"""Table operations against a real engine, through boto3 and raw HTTP.

Every expected message is DynamoDB's own wording.  Tests make their own
uniquely named tables, so they share one engine per module.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tablekeeper.engine.errors import LimitExceededException
from tablekeeper.engine.operations.table_admin import (
    long_utc_time,
    new_stream_label,
    plan_throughput,
)
from tablekeeper.engine.operations.tags import Resource, resource_of
from tablekeeper.engine.tables import Throughput
from tests.conftest import EngineProcess, create_table, make_client, start_engine, unique_name

ACCOUNT = "000000000000"
REGION = "us-east-1"
INVALID = "One or more parameter values were invalid: "
NOTHING_TO_UPDATE = (
    "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
    "GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, "
    "ReplicaTransitRoleArn, MultiRegionConsistency, DeletionProtectionEnabled, OnDemandThroughput, "
    "WarmThroughput or TableClass is required"
)
STREAM_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}")
TOO_MANY_TAGS = "Number of Tags exceed the current limit for the provided ResourceArn"
QUICK_WAIT = {"Delay": 1, "MaxAttempts": 5}

HASH_PK = [{"AttributeName": "pk", "KeyType": "HASH"}]
PK_S = [{"AttributeName": "pk", "AttributeType": "S"}]
ON_DEMAND: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST"}


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_ddb(engine: EngineProcess) -> BaseClient:
    """A client that sends what it is given: the server, not botocore, must refuse it."""
    return make_client(
        engine.endpoint,
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


@pytest.fixture
def table(ddb: BaseClient) -> str:
    """An on-demand table with a string hash key ``pk``."""
    return create_table(ddb, unique_name())


@pytest.fixture
def provisioned(ddb: BaseClient) -> str:
    """A provisioned 10/10 table."""
    name = unique_name()
    ddb.create_table(
        TableName=name, KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
    )
    return name


def arn_of(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def failure(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    """The (code, message) of the error a call must fail with."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error.get("Message", "")


def rejected(message: str) -> tuple[str, str]:
    return "ValidationException", message


def capacity(read: int, write: int) -> dict[str, int]:
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def described(ddb: BaseClient, name: str) -> dict[str, Any]:
    return ddb.describe_table(TableName=name)["Table"]


def tags_of(ddb: BaseClient, name: str) -> dict[str, str]:
    tags = ddb.list_tags_of_resource(ResourceArn=arn_of(name))["Tags"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def post(endpoint: str, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    """A raw DynamoDB request: (HTTP status, decoded JSON body)."""
    url = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        headers["X-Amz-Target"] = target
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


# --- CreateTable ---------------------------------------------------------------------------


def test_create_table_answers_creating_with_the_table_description(ddb: BaseClient) -> None:
    name = unique_name()
    description = ddb.create_table(
        TableName=name,
        KeySchema=[*HASH_PK, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[*PK_S, {"AttributeName": "sk", "AttributeType": "N"}],
        **ON_DEMAND,
    )["TableDescription"]
    assert description["TableName"] == name
    assert description["TableStatus"] == "CREATING"
    assert description["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert description["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
    ]
    assert description["TableArn"] == arn_of(name)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        description["TableId"])
    assert (description["ItemCount"], description["TableSizeBytes"]) == (0, 0)
    assert description["DeletionProtectionEnabled"] is False


def test_create_table_on_demand_reports_pay_per_request_and_zero_throughput(
    ddb: BaseClient, table: str
) -> None:
    description = described(ddb, table)
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert "LastUpdateToPayPerRequestDateTime" in description["BillingModeSummary"]
    throughput = description["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (0, 0)
    assert throughput["NumberOfDecreasesToday"] == 0


def test_create_table_provisioned_reports_its_throughput_and_no_billing_summary(
    ddb: BaseClient, provisioned: str
) -> None:
    description = described(ddb, provisioned)
    assert "BillingModeSummary" not in description
    throughput = description["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (10, 10)


def test_create_table_with_an_existing_name_is_resource_in_use(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.create_table, TableName=table, KeySchema=HASH_PK, AttributeDefinitions=PK_S, **ON_DEMAND
    ) == ("ResourceInUseException", f"Table already exists: {table}")


def test_create_table_name_shorter_than_three_characters_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(
        raw_ddb.create_table, TableName="ab", KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        **ON_DEMAND,
    ) == (
        "ValidationException",
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3",
    )


def test_create_table_name_longer_than_255_characters_is_rejected(raw_ddb: BaseClient) -> None:
    name = "a" * 256
    assert failure(
        raw_ddb.create_table, TableName=name, KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        **ON_DEMAND,
    ) == (
        "ValidationException",
        f"1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: "
        "Member must have length less than or equal to 255",
    )


def test_create_table_name_with_characters_outside_the_pattern_is_rejected(
    raw_ddb: BaseClient,
) -> None:
    assert failure(
        raw_ddb.create_table, TableName="bad name!", KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        **ON_DEMAND,
    ) == (
        "ValidationException",
        "1 validation error detected: Value 'bad name!' at 'tableName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    )


def test_create_table_without_key_schema_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(
        raw_ddb.create_table, TableName=unique_name(), AttributeDefinitions=PK_S, **ON_DEMAND
    ) == (
        "ValidationException",
        "1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_create_table_with_empty_key_schema_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(
        raw_ddb.create_table, TableName=unique_name(), KeySchema=[], AttributeDefinitions=PK_S,
        **ON_DEMAND,
    ) == (
        "ValidationException",
        "1 validation error detected: Value '[]' at 'keySchema' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    )


def test_create_table_with_range_key_listed_first_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(),
        KeySchema=[{"AttributeName": "sk", "KeyType": "RANGE"}, *HASH_PK],
        AttributeDefinitions=[*PK_S, {"AttributeName": "sk", "AttributeType": "S"}], **ON_DEMAND,
    ) == rejected("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")


def test_create_table_with_two_hash_keys_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(),
        KeySchema=[*HASH_PK, {"AttributeName": "sk", "KeyType": "HASH"}],
        AttributeDefinitions=[*PK_S, {"AttributeName": "sk", "AttributeType": "S"}], **ON_DEMAND,
    ) == rejected("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def test_create_table_with_hash_and_range_key_of_one_name_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(),
        KeySchema=[*HASH_PK, {"AttributeName": "pk", "KeyType": "RANGE"}],
        AttributeDefinitions=[*PK_S, {"AttributeName": "sk", "AttributeType": "S"}], **ON_DEMAND,
    ) == (
        "ValidationException",
        "Both the Hash Key and the Range Key element in the KeySchema have the same name",
    )


def test_create_table_key_without_attribute_definition_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK,
        AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}], **ON_DEMAND,
    ) == (
        "ValidationException",
        INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
        "Keys: [pk], AttributeDefinitions: [other]",
    )


def test_create_table_key_names_are_case_sensitive(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(),
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}], AttributeDefinitions=PK_S,
        **ON_DEMAND,
    ) == (
        "ValidationException",
        INVALID + "Some index key attributes are not defined in AttributeDefinitions. "
        "Keys: [PK], AttributeDefinitions: [pk]",
    )


def test_create_table_unused_attribute_definition_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK,
        AttributeDefinitions=[*PK_S, {"AttributeName": "extra", "AttributeType": "N"}], **ON_DEMAND,
    ) == (
        "ValidationException",
        INVALID + "Number of attributes in KeySchema does not exactly match number of attributes "
        "defined in AttributeDefinitions",
    )


def test_create_table_duplicate_attribute_definitions_are_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK,
        AttributeDefinitions=[*PK_S, {"AttributeName": "pk", "AttributeType": "N"}], **ON_DEMAND,
    ) == ("ValidationException", "Attribute Name is duplicated: pk")


def test_create_table_with_no_attribute_definitions_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK, AttributeDefinitions=[],
        **ON_DEMAND,
    ) == ("ValidationException", "Invalid KeySchema: Some index key attribute have no definition")


def test_create_table_attribute_type_outside_b_n_s_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(
        raw_ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "SS"}], **ON_DEMAND,
    ) == (
        "ValidationException",
        "1 validation error detected: Value 'SS' at 'attributeDefinitions.1.member.attributeType' "
        "failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
    )


def test_create_table_unknown_billing_mode_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(
        raw_ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        BillingMode="FREE",
    ) == (
        "ValidationException",
        "1 validation error detected: Value 'FREE' at 'billingMode' failed to satisfy constraint: "
        "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
    )


def test_create_table_provisioned_without_throughput_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK, AttributeDefinitions=PK_S
    ) == (
        "ValidationException",
        INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
        "BillingMode is PROVISIONED",
    )


def test_create_table_on_demand_with_throughput_is_rejected(ddb: BaseClient) -> None:
    assert failure(
        ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}, **ON_DEMAND,
    ) == (
        "ValidationException",
        INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
        "BillingMode is PAY_PER_REQUEST",
    )


def test_create_table_zero_read_capacity_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(
        raw_ddb.create_table, TableName=unique_name(), KeySchema=HASH_PK, AttributeDefinitions=PK_S,
        ProvisionedThroughput={"ReadCapacityUnits": 0, "WriteCapacityUnits": 1},
    ) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'provisionedThroughput.readCapacityUnits' "
        "failed to satisfy constraint: Member must have value greater than or equal to 1",
    )


def test_create_table_with_a_table_arn_creates_the_named_table(ddb: BaseClient) -> None:
    name = unique_name()
    description = ddb.create_table(
        TableName=arn_of(name), KeySchema=HASH_PK, AttributeDefinitions=PK_S, **ON_DEMAND
    )["TableDescription"]
    assert description["TableName"] == name
    assert described(ddb, name)["TableArn"] == arn_of(name)


def test_create_table_stores_the_given_tags(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name(), Tags=[{"Key": "team", "Value": "storage"}])
    assert tags_of(ddb, name) == {"team": "storage"}


def test_create_table_sets_deletion_protection(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name(), DeletionProtectionEnabled=True)
    assert described(ddb, name)["DeletionProtectionEnabled"] is True
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)


def test_create_table_with_a_stream_reports_its_latest_stream(ddb: BaseClient) -> None:
    name = create_table(
        ddb, unique_name(),
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    description = described(ddb, name)
    assert STREAM_LABEL.fullmatch(description["LatestStreamLabel"])
    label = description["LatestStreamLabel"]
    assert description["LatestStreamArn"] == f"{arn_of(name)}/stream/{label}"


# --- DescribeTable -------------------------------------------------------------------------


def test_describe_table_reports_an_active_table(ddb: BaseClient, table: str) -> None:
    description = described(ddb, table)
    assert description["TableName"] == table
    assert description["TableStatus"] == "ACTIVE"


def test_describe_table_accepts_the_table_arn(ddb: BaseClient, table: str) -> None:
    assert ddb.describe_table(TableName=arn_of(table))["Table"]["TableName"] == table


def test_describe_missing_table_is_resource_not_found(ddb: BaseClient) -> None:
    name = unique_name()
    assert failure(ddb.describe_table, TableName=name) == (
        "ResourceNotFoundException", f"Requested resource not found: Table: {name} not found",
    )


def test_table_exists_waiter_returns_once_the_table_is_active(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name())
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=QUICK_WAIT)
    assert described(ddb, name)["TableStatus"] == "ACTIVE"


# --- ListTables ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def last_three(ddb: BaseClient) -> list[str]:
    """Three tables that sort after every other table of this module."""
    prefix = "zzzz-" + unique_name("list")
    return [create_table(ddb, f"{prefix}-{i}") for i in range(3)]


def test_list_tables_names_created_tables(ddb: BaseClient, table: str) -> None:
    names: list[str] = []
    for page in ddb.get_paginator("list_tables").paginate():
        names.extend(page["TableNames"])
    assert table in names
    assert names == sorted(names)


def test_list_tables_limit_ends_a_page_with_last_evaluated_table_name(
    ddb: BaseClient, last_three: list[str]
) -> None:
    page = ddb.list_tables(ExclusiveStartTableName=last_three[0][:-2], Limit=2)
    assert page["TableNames"] == last_three[:2]
    assert page["LastEvaluatedTableName"] == last_three[1]


def test_list_tables_resumes_after_exclusive_start_table_name(
    ddb: BaseClient, last_three: list[str]
) -> None:
    page = ddb.list_tables(ExclusiveStartTableName=last_three[1], Limit=2)
    assert page["TableNames"] == last_three[2:]


def test_list_tables_last_page_has_no_last_evaluated_table_name(
    ddb: BaseClient, last_three: list[str]
) -> None:
    page = ddb.list_tables(ExclusiveStartTableName=last_three[0], Limit=2)
    assert page["TableNames"] == last_three[1:]
    assert "LastEvaluatedTableName" not in page


def test_list_tables_limit_of_zero_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(raw_ddb.list_tables, Limit=0) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    )


def test_list_tables_limit_above_100_is_rejected(ddb: BaseClient) -> None:
    assert failure(ddb.list_tables, Limit=101) == (
        "ValidationException",
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 100",
    )


def test_list_tables_start_name_must_look_like_a_table_name(raw_ddb: BaseClient) -> None:
    assert failure(raw_ddb.list_tables, ExclusiveStartTableName="no spaces") == (
        "ValidationException",
        "1 validation error detected: Value 'no spaces' at 'exclusiveStartTableName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    )


# --- DeleteTable ---------------------------------------------------------------------------


def test_delete_table_answers_deleting_and_the_table_is_gone(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name())
    assert ddb.delete_table(TableName=name)["TableDescription"]["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=QUICK_WAIT)
    assert failure(ddb.describe_table, TableName=name)[0] == "ResourceNotFoundException"


def test_delete_table_accepts_the_table_arn(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name())
    assert ddb.delete_table(TableName=arn_of(name))["TableDescription"]["TableName"] == name


def test_delete_missing_table_is_resource_not_found(ddb: BaseClient) -> None:
    name = unique_name()
    assert failure(ddb.delete_table, TableName=name) == (
        "ResourceNotFoundException", f"Requested resource not found: Table: {name} not found",
    )


def test_delete_protected_table_is_refused(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name(), DeletionProtectionEnabled=True)
    assert failure(ddb.delete_table, TableName=name) == (
        "ValidationException",
        "Resource cannot be deleted as it is currently protected against deletion. "
        "Disable deletion protection first.",
    )
    assert described(ddb, name)["TableStatus"] == "ACTIVE"
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)


def test_delete_table_succeeds_once_protection_is_disabled(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name(), DeletionProtectionEnabled=True)
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    assert ddb.delete_table(TableName=name)["TableDescription"]["TableStatus"] == "DELETING"


def test_table_created_again_after_delete_starts_without_old_tags(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name(), Tags=[{"Key": "k", "Value": "v"}])
    ddb.delete_table(TableName=name)
    create_table(ddb, name)
    assert tags_of(ddb, name) == {}


# --- UpdateTable: what a request may ask ---------------------------------------------------


def test_update_table_with_nothing_to_change_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.update_table, TableName=table) == ("ValidationException", NOTHING_TO_UPDATE)


def test_update_table_with_only_attribute_definitions_changes_nothing(
    ddb: BaseClient, table: str
) -> None:
    assert failure(ddb.update_table, TableName=table, AttributeDefinitions=PK_S) == (
        "ValidationException", NOTHING_TO_UPDATE,
    )


def test_update_table_empty_index_updates_alone_change_nothing(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.update_table, TableName=table, GlobalSecondaryIndexUpdates=[]) == (
        "ValidationException", NOTHING_TO_UPDATE,
    )


def test_update_table_empty_index_updates_beside_a_change_are_rejected(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.update_table, TableName=table, GlobalSecondaryIndexUpdates=[],
        DeletionProtectionEnabled=True,
    ) == ("ValidationException", INVALID + "List of GlobalSecondaryIndexUpdates is empty")


def test_update_table_deleting_an_index_the_table_lacks_is_resource_not_found(
    ddb: BaseClient, table: str
) -> None:
    # The index rules themselves are tested in tests/engine/test_indexes.py.
    assert failure(
        ddb.update_table, TableName=table,
        GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byOther"}}],
    ) == (
        "ResourceNotFoundException",
        f"Requested resource not found: Index byOther for table {table}",
    )


def test_update_table_replica_updates_are_refused_until_supported(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.update_table, TableName=table, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}],
    ) == rejected("ReplicaUpdates are not supported by this engine version yet")


def test_update_missing_table_is_resource_not_found(ddb: BaseClient) -> None:
    name = unique_name()
    assert failure(ddb.update_table, TableName=name, DeletionProtectionEnabled=True) == (
        "ResourceNotFoundException", f"Requested resource not found: Table: {name} not found",
    )


def test_update_table_checks_the_request_before_looking_for_the_table(
    raw_ddb: BaseClient,
) -> None:
    assert failure(
        raw_ddb.update_table, TableName=unique_name(),
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 0},
    ) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'provisionedThroughput.writeCapacityUnits' "
        "failed to satisfy constraint: Member must have value greater than or equal to 1",
    )


def test_update_table_accepts_the_table_arn(ddb: BaseClient, table: str) -> None:
    ddb.update_table(TableName=arn_of(table), DeletionProtectionEnabled=True)
    assert described(ddb, table)["DeletionProtectionEnabled"] is True
    ddb.update_table(TableName=table, DeletionProtectionEnabled=False)


def test_update_table_deletion_protection_with_another_change_is_rejected(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.update_table, TableName=table, DeletionProtectionEnabled=True,
        BillingMode="PAY_PER_REQUEST",
    ) == ("ValidationException", INVALID + "DeletionProtection modification must be the only "
          "operation in the request")


def test_update_table_names_encryption_first_among_lone_changes(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.update_table, TableName=table, DeletionProtectionEnabled=True, TableClass="STANDARD",
        SSESpecification={"Enabled": True},
    ) == ("ValidationException", INVALID + "Server-Side Encryption modification must be the only "
          "operation in the request")


def test_update_table_table_class_with_another_change_is_rejected(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.update_table, TableName=table, TableClass="STANDARD_INFREQUENT_ACCESS",
        DeletionProtectionEnabled=True,
    ) == ("ValidationException", INVALID + "TableClass modification must be the only operation "
          "in the request")


def test_update_table_stream_with_a_throughput_change_is_rejected(
    ddb: BaseClient, provisioned: str
) -> None:
    assert failure(
        ddb.update_table, TableName=provisioned,
        ProvisionedThroughput={"ReadCapacityUnits": 11, "WriteCapacityUnits": 11},
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    ) == rejected(INVALID + "You cannot modify stream status while updating table IOPS")


# --- UpdateTable: provisioned throughput ---------------------------------------------------


def test_update_table_raises_throughput_and_records_the_increase(
    ddb: BaseClient, provisioned: str
) -> None:
    response = ddb.update_table(
        TableName=provisioned, ProvisionedThroughput=capacity(20, 10)
    )["TableDescription"]
    assert response["TableStatus"] == "UPDATING"
    throughput = described(ddb, provisioned)["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (20, 10)
    assert "LastIncreaseDateTime" in throughput
    assert "LastDecreaseDateTime" not in throughput
    assert throughput["NumberOfDecreasesToday"] == 0


def test_update_table_lowers_throughput_and_counts_the_decrease(
    ddb: BaseClient, provisioned: str
) -> None:
    ddb.update_table(
        TableName=provisioned, ProvisionedThroughput=capacity(5, 5)
    )
    throughput = described(ddb, provisioned)["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (5, 5)
    assert "LastDecreaseDateTime" in throughput
    assert throughput["NumberOfDecreasesToday"] == 1


def test_update_table_one_dimension_up_and_one_down_is_both_an_increase_and_a_decrease(
    ddb: BaseClient, provisioned: str
) -> None:
    ddb.update_table(
        TableName=provisioned, ProvisionedThroughput=capacity(11, 9)
    )
    throughput = described(ddb, provisioned)["ProvisionedThroughput"]
    assert "LastIncreaseDateTime" in throughput and "LastDecreaseDateTime" in throughput
    assert throughput["NumberOfDecreasesToday"] == 1


def test_update_table_with_the_current_throughput_is_rejected(
    ddb: BaseClient, provisioned: str
) -> None:
    assert failure(
        ddb.update_table, TableName=provisioned,
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
    ) == (
        "ValidationException",
        "The provisioned throughput for the table will not change. The requested value equals the "
        "current value. Current ReadCapacityUnits provisioned for the table: 10. Requested "
        "ReadCapacityUnits: 10. Current WriteCapacityUnits provisioned for the table: 10. "
        "Requested WriteCapacityUnits: 10. Refer to the Amazon DynamoDB Developer Guide for "
        "current limits and how to request higher limits.",
    )


def test_update_table_fifth_decrease_of_the_day_is_limited(
    ddb: BaseClient, provisioned: str
) -> None:
    for units in (9, 8, 7, 6):
        ddb.update_table(
            TableName=provisioned,
            ProvisionedThroughput={"ReadCapacityUnits": units, "WriteCapacityUnits": 10},
        )
    last = described(ddb, provisioned)["ProvisionedThroughput"]["LastDecreaseDateTime"]
    code, message = failure(
        ddb.update_table, TableName=provisioned,
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 10},
    )
    assert code == "LimitExceededException"
    assert message == (
        "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given "
        "UTC day. After the first 4 decreases, each subsequent decrease in the same UTC day can "
        "be performed at most once every 3600 seconds. Number of decreases today: 4. "
        f"Last decrease at {_spelled(last)}. Next decrease can be made at "
        f"{_spelled(last + timedelta(hours=1))}"
    )


def _spelled(moment: datetime) -> str:
    t = moment.astimezone(UTC)
    return (f"{t:%A}, {t:%B} {t.day}, {t.year} at {t.hour % 12 or 12}:{t:%M:%S} "
            f"{'AM' if t.hour < 12 else 'PM'} Coordinated Universal Time")


def test_update_table_increases_are_not_limited(ddb: BaseClient, provisioned: str) -> None:
    for units in range(11, 17):
        ddb.update_table(
            TableName=provisioned,
            ProvisionedThroughput={"ReadCapacityUnits": units, "WriteCapacityUnits": 10},
        )
    assert described(ddb, provisioned)["ProvisionedThroughput"]["ReadCapacityUnits"] == 16


def test_update_table_throughput_above_the_table_maximum_is_limit_exceeded(
    ddb: BaseClient, provisioned: str
) -> None:
    assert failure(
        ddb.update_table, TableName=provisioned,
        ProvisionedThroughput={"ReadCapacityUnits": 40001, "WriteCapacityUnits": 10},
    ) == (
        "LimitExceededException",
        "The requested ReadCapacityUnits, 40001, is above the per table maximum for the account in "
        "us-east-1. Per table maximum: 40000.",
    )


def test_update_table_throughput_on_an_on_demand_table_is_rejected(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.update_table, TableName=table,
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    ) == (
        "ValidationException",
        INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
        "BillingMode is PAY_PER_REQUEST",
    )


# --- UpdateTable: billing mode -------------------------------------------------------------


def test_update_table_switches_provisioned_to_pay_per_request(
    ddb: BaseClient, provisioned: str
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = ddb.update_table(TableName=provisioned, BillingMode="PAY_PER_REQUEST")
    assert response["TableDescription"]["TableStatus"] == "UPDATING"
    description = described(ddb, provisioned)
    assert description["TableStatus"] == "ACTIVE"
    summary = description["BillingModeSummary"]
    assert summary["BillingMode"] == "PAY_PER_REQUEST"
    assert summary["LastUpdateToPayPerRequestDateTime"] > before
    throughput = description["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (0, 0)


def test_update_table_switches_pay_per_request_to_provisioned_with_the_given_throughput(
    ddb: BaseClient, table: str
) -> None:
    ddb.update_table(
        TableName=table, BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4},
    )
    description = described(ddb, table)
    assert description["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    throughput = description["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 4)


def test_update_table_back_to_provisioned_keeps_the_last_switch_to_pay_per_request(
    ddb: BaseClient, table: str
) -> None:
    switched = described(ddb, table)["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"]
    ddb.update_table(
        TableName=table, BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4},
    )
    assert described(ddb, table)["BillingModeSummary"] == {
        "BillingMode": "PROVISIONED", "LastUpdateToPayPerRequestDateTime": switched,
    }


def test_update_table_to_provisioned_without_throughput_is_rejected(
    ddb: BaseClient, provisioned: str
) -> None:
    assert failure(ddb.update_table, TableName=provisioned, BillingMode="PROVISIONED") == (
        "ValidationException",
        INVALID + "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
    )


def test_update_table_to_pay_per_request_with_throughput_is_rejected(
    ddb: BaseClient, provisioned: str
) -> None:
    assert failure(
        ddb.update_table, TableName=provisioned, BillingMode="PAY_PER_REQUEST",
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    ) == (
        "ValidationException",
        INVALID + "ProvisionedThroughput cannot be specified when BillingMode is PAY_PER_REQUEST",
    )


def test_update_table_resending_pay_per_request_is_accepted(ddb: BaseClient, table: str) -> None:
    before = described(ddb, table)["BillingModeSummary"]
    ddb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
    assert described(ddb, table)["BillingModeSummary"] == before


def test_update_table_to_pay_per_request_may_enable_a_stream_too(
    ddb: BaseClient, provisioned: str
) -> None:
    ddb.update_table(
        TableName=provisioned, BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    description = described(ddb, provisioned)
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert description["StreamSpecification"]["StreamEnabled"] is True


# --- UpdateTable: streams ------------------------------------------------------------------


def enable_stream(ddb: BaseClient, name: str, view: str = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
    return ddb.update_table(
        TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": view}
    )["TableDescription"]


def test_update_table_enables_a_stream_with_a_new_label(ddb: BaseClient, table: str) -> None:
    response = enable_stream(ddb, table)
    assert response["TableStatus"] == "UPDATING"
    description = described(ddb, table)
    assert description["StreamSpecification"] == {
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    label = description["LatestStreamLabel"]
    assert STREAM_LABEL.fullmatch(label)
    started = datetime.strptime(label, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    assert abs(started - datetime.now(UTC)) < timedelta(minutes=1)
    assert description["LatestStreamArn"] == f"{arn_of(table)}/stream/{label}"


def test_update_table_enabling_an_enabled_stream_is_rejected(ddb: BaseClient, table: str) -> None:
    enable_stream(ddb, table)
    assert failure(
        ddb.update_table, TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    ) == ("ValidationException", f"Table already has an enabled stream: TableName: {table}")


def test_update_table_cannot_change_the_stream_view_type_in_place(
    ddb: BaseClient, table: str
) -> None:
    enable_stream(ddb, table)
    assert failure(
        ddb.update_table, TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    ) == ("ValidationException", f"Table already has an enabled stream: TableName: {table}")


def test_update_table_disabling_a_stream_keeps_the_latest_stream_label(
    ddb: BaseClient, table: str
) -> None:
    label = enable_stream(ddb, table)["LatestStreamLabel"]
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    description = described(ddb, table)
    assert "StreamSpecification" not in description
    assert description["LatestStreamLabel"] == label


def test_update_table_disabling_an_absent_stream_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.update_table, TableName=table, StreamSpecification={"StreamEnabled": False}
    ) == ("ValidationException", f"Table has no stream to disable: TableName: {table}")


def test_update_table_re_enabling_a_stream_mints_a_new_label(ddb: BaseClient, table: str) -> None:
    first = enable_stream(ddb, table)["LatestStreamLabel"]
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    second = enable_stream(ddb, table, "KEYS_ONLY")["LatestStreamLabel"]
    assert second > first


def test_update_table_enabling_a_stream_needs_a_view_type(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.update_table, TableName=table, StreamSpecification={"StreamEnabled": True}
    ) == rejected(INVALID + "If stream is being enabled then UpdateViewType is required")


def test_update_table_disabling_a_stream_takes_no_view_type(ddb: BaseClient, table: str) -> None:
    enable_stream(ddb, table)
    assert failure(
        ddb.update_table, TableName=table,
        StreamSpecification={"StreamEnabled": False, "StreamViewType": "KEYS_ONLY"},
    ) == ("ValidationException", INVALID + "If stream is being disabled, then UpdateViewType must "
          "not be specified")


def test_update_table_unknown_stream_view_type_is_rejected(raw_ddb: BaseClient, table: str) -> None:
    assert failure(
        raw_ddb.update_table, TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "ALL"},
    ) == (
        "ValidationException",
        "1 validation error detected: Value 'ALL' at 'streamSpecification.streamViewType' failed "
        "to satisfy constraint: Member must satisfy enum value set: "
        "[OLD_IMAGE, KEYS_ONLY, NEW_AND_OLD_IMAGES, NEW_IMAGE]",
    )


# --- UpdateTable: deletion protection, table class, encryption -----------------------------


def test_update_table_enables_deletion_protection_in_place(ddb: BaseClient, table: str) -> None:
    response = ddb.update_table(TableName=table, DeletionProtectionEnabled=True)["TableDescription"]
    assert response["TableStatus"] == "ACTIVE"
    assert response["DeletionProtectionEnabled"] is True
    assert described(ddb, table)["DeletionProtectionEnabled"] is True
    ddb.update_table(TableName=table, DeletionProtectionEnabled=False)


def test_update_table_resending_deletion_protection_is_accepted(
    ddb: BaseClient, table: str
) -> None:
    ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
    assert described(ddb, table)["DeletionProtectionEnabled"] is False


def test_update_table_changes_the_table_class(ddb: BaseClient, table: str) -> None:
    ddb.update_table(TableName=table, TableClass="STANDARD_INFREQUENT_ACCESS")
    summary = described(ddb, table)["TableClassSummary"]
    assert summary["TableClass"] == "STANDARD_INFREQUENT_ACCESS"


def test_update_table_unknown_table_class_is_rejected(raw_ddb: BaseClient, table: str) -> None:
    assert failure(raw_ddb.update_table, TableName=table, TableClass="GLACIER") == (
        "ValidationException",
        "Invalid table-class parameter provided. Please try again with a valid table-class value: "
        "[STANDARD, STANDARD_INFREQUENT_ACCESS].",
    )


def test_update_table_encrypts_with_the_given_kms_key(ddb: BaseClient, table: str) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    response = ddb.update_table(
        TableName=table, SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}
    )["TableDescription"]
    assert response["TableStatus"] == "ACTIVE"
    assert described(ddb, table)["SSEDescription"] == {
        "Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key,
    }


def test_update_table_resending_the_current_kms_key_arn_is_rejected(
    ddb: BaseClient, table: str
) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    sse = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}
    ddb.update_table(TableName=table, SSESpecification=sse)
    assert failure(ddb.update_table, TableName=table, SSESpecification=sse) == (
        "ValidationException",
        INVALID + "Table is already encrypted with given KMSMasterKeyId. Use KMSMasterKeyId "
        "parameter if you want to change Master Key",
    )


def test_update_table_disabling_encryption_returns_to_the_default(
    ddb: BaseClient, table: str
) -> None:
    ddb.update_table(TableName=table, SSESpecification={"Enabled": True})
    assert described(ddb, table)["SSEDescription"]["Status"] == "ENABLED"
    ddb.update_table(TableName=table, SSESpecification={"Enabled": False})
    assert "SSEDescription" not in described(ddb, table)


def test_update_table_disabling_default_encryption_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.update_table, TableName=table, SSESpecification={"Enabled": False}) == (
        "ValidationException", INVALID + "Table is already encrypted by default",
    )


def test_update_table_aes256_encryption_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.update_table, TableName=table, SSESpecification={"Enabled": True, "SSEType": "AES256"}
    ) == ("ValidationException", INVALID + "SSEType AES256 is not supported")


def test_update_table_kms_key_without_kms_type_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.update_table, TableName=table,
        SSESpecification={"Enabled": True, "KMSMasterKeyId": "alias/mine"},
    ) == ("ValidationException", INVALID + "SSEType KMS is required if KMSMasterKeyId is specified")


# --- TagResource, UntagResource, ListTagsOfResource ---------------------------------------


def test_list_tags_of_an_untagged_table_is_an_empty_list(ddb: BaseClient, table: str) -> None:
    assert ddb.list_tags_of_resource(ResourceArn=arn_of(table))["Tags"] == []


def test_tag_resource_adds_tags_in_the_order_given(ddb: BaseClient, table: str) -> None:
    tags = [{"Key": "team", "Value": "storage"}, {"Key": "env", "Value": "prod"}]
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=tags)
    assert ddb.list_tags_of_resource(ResourceArn=arn_of(table))["Tags"] == tags


def test_tag_resource_overwrites_the_value_of_an_existing_key(ddb: BaseClient, table: str) -> None:
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=[{"Key": "k", "Value": "v1"}])
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=[{"Key": "k", "Value": "v2"}])
    assert tags_of(ddb, table) == {"k": "v2"}


def test_tag_keys_are_case_sensitive_and_values_may_be_empty(ddb: BaseClient, table: str) -> None:
    ddb.tag_resource(
        ResourceArn=arn_of(table), Tags=[{"Key": "Env", "Value": ""}, {"Key": "env", "Value": "x"}]
    )
    assert tags_of(ddb, table) == {"Env": "", "env": "x"}


def test_tags_may_hold_letters_of_any_script_and_aws_punctuation(
    ddb: BaseClient, table: str
) -> None:
    tags = {"ключ café 表": "a+b-c=d.e_f:g/h@i"}
    ddb.tag_resource(
        ResourceArn=arn_of(table), Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    assert tags_of(ddb, table) == tags


def test_untag_resource_removes_keys_and_ignores_absent_ones(ddb: BaseClient, table: str) -> None:
    ddb.tag_resource(
        ResourceArn=arn_of(table), Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    )
    ddb.untag_resource(ResourceArn=arn_of(table), TagKeys=["a", "never-set"])
    assert tags_of(ddb, table) == {"b": "2"}


def test_tag_resource_without_tags_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.tag_resource, ResourceArn=arn_of(table), Tags=[]) == (
        "ValidationException", "Atleast one Tag needs to be provided as Input.",
    )


def test_untag_resource_without_keys_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.untag_resource, ResourceArn=arn_of(table), TagKeys=[]) == (
        "ValidationException", "Atleast one Tag Key needs to be provided as Input.",
    )


def test_tag_key_with_the_aws_prefix_is_reserved(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.tag_resource, ResourceArn=arn_of(table), Tags=[{"Key": "AWS:owner", "Value": "x"}]
    ) == ("ValidationException", "Tag Key cannot be prefixed with aws:, Key: AWS:owner")


def test_untag_of_an_aws_prefixed_key_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.untag_resource, ResourceArn=arn_of(table), TagKeys=["aws:foo"]) == (
        "ValidationException", "Tag Key cannot be prefixed with aws:, Key: aws:foo",
    )


def test_tag_key_longer_than_128_characters_is_rejected(raw_ddb: BaseClient, table: str) -> None:
    key = "k" * 129
    assert failure(
        raw_ddb.tag_resource, ResourceArn=arn_of(table), Tags=[{"Key": key, "Value": "v"}]
    ) == rejected(f"The Tag Key provided is invalid, Key: {key}")


def test_tag_value_longer_than_256_characters_is_rejected(raw_ddb: BaseClient, table: str) -> None:
    value = "v" * 257
    assert failure(
        raw_ddb.tag_resource, ResourceArn=arn_of(table), Tags=[{"Key": "k", "Value": value}]
    ) == ("ValidationException", f"The Tag Value provided is invalid, Value: {value}")


def test_tag_without_a_value_is_rejected(raw_ddb: BaseClient, table: str) -> None:
    assert failure(raw_ddb.tag_resource, ResourceArn=arn_of(table), Tags=[{"Key": "k"}]) == (
        "ValidationException", "The Tag Value provided is invalid, Value: null",
    )


def test_tag_with_a_character_outside_the_tag_alphabet_is_rejected(
    ddb: BaseClient, table: str
) -> None:
    assert failure(
        ddb.tag_resource, ResourceArn=arn_of(table), Tags=[{"Key": "bad#char", "Value": "v"}]
    ) == ("ValidationException", "The Tag Key provided is invalid, Key: bad#char")


def test_tag_resource_with_a_duplicate_key_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.tag_resource, ResourceArn=arn_of(table),
        Tags=[{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
    ) == rejected("Duplicate Tag Keys provided as input: Duplicate Tag Key found dup")


def test_tag_resource_applies_no_tag_when_one_is_invalid(ddb: BaseClient, table: str) -> None:
    failure(
        ddb.tag_resource, ResourceArn=arn_of(table),
        Tags=[{"Key": "good", "Value": "1"}, {"Key": "aws:zzz", "Value": "2"}],
    )
    assert tags_of(ddb, table) == {}


def fifty_tags(prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i:02d}", "Value": f"v{i:02d}"} for i in range(50)]


def test_tag_resource_beyond_50_tags_is_rejected(ddb: BaseClient, table: str) -> None:
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=fifty_tags())
    assert failure(
        ddb.tag_resource, ResourceArn=arn_of(table), Tags=[{"Key": "one-more", "Value": "x"}]
    ) == rejected(TOO_MANY_TAGS)


def test_tag_resource_may_overwrite_values_at_50_tags(ddb: BaseClient, table: str) -> None:
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=fifty_tags())
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=[{"Key": "k00", "Value": "new"}])
    assert tags_of(ddb, table)["k00"] == "new"


def test_untag_resource_with_more_than_50_keys_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.untag_resource, ResourceArn=arn_of(table), TagKeys=[f"k{i}" for i in range(51)]
    ) == rejected(TOO_MANY_TAGS)


def test_list_tags_of_resource_returns_all_50_tags_in_one_page(ddb: BaseClient, table: str) -> None:
    ddb.tag_resource(ResourceArn=arn_of(table), Tags=fifty_tags())
    page = ddb.list_tags_of_resource(ResourceArn=arn_of(table))
    assert page["Tags"] == fifty_tags()
    assert "NextToken" not in page


def test_list_tags_of_resource_rejects_a_next_token_it_did_not_issue(
    ddb: BaseClient, table: str
) -> None:
    assert failure(ddb.list_tags_of_resource, ResourceArn=arn_of(table), NextToken="bogus") == (
        "ValidationException", "Invalid NextToken: bogus",
    )


def test_tag_resource_with_a_bare_table_name_is_rejected(ddb: BaseClient, table: str) -> None:
    assert failure(ddb.tag_resource, ResourceArn=table, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ValidationException", INVALID + f"ARNs must start with 'arn:': {table}",
    )


def test_tag_resource_of_another_account_is_access_denied(ddb: BaseClient, table: str) -> None:
    assert failure(
        ddb.tag_resource, ResourceArn=arn_of(table, account="111122223333"),
        Tags=[{"Key": "k", "Value": "v"}],
    ) == ("AccessDeniedException", "Access is denied")


def test_list_tags_of_a_table_in_another_region_is_an_invalid_table_arn(
    ddb: BaseClient, table: str
) -> None:
    arn = arn_of(table, region="eu-west-1")
    assert failure(ddb.list_tags_of_resource, ResourceArn=arn) == (
        "ValidationException", f"Invalid TableArn: Invalid ResourceArn provided as input {arn}",
    )


def test_tag_resource_arn_with_a_too_short_table_name_is_invalid(ddb: BaseClient) -> None:
    arn = arn_of("ab")
    assert failure(ddb.tag_resource, ResourceArn=arn, Tags=[]) == (
        "ValidationException", f"Invalid TableArn: Invalid ResourceArn provided as input {arn}",
    )


def test_tag_resource_of_an_index_arn_is_rejected(ddb: BaseClient, table: str) -> None:
    arn = f"{arn_of(table)}/index/byOther"
    assert failure(ddb.tag_resource, ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ValidationException",
        INVALID + "Invalid resource arn provided, only table or stream is accepted. "
        f"Provided resource arn: {arn}",
    )


def test_list_tags_of_a_backup_arn_is_rejected(ddb: BaseClient, table: str) -> None:
    arn = f"{arn_of(table)}/backup/01791525400213-63b4d36a"
    assert failure(ddb.list_tags_of_resource, ResourceArn=arn) == (
        "ValidationException", INVALID + f"Provided Arn is not a DynamoDB resource arn: {arn}",
    )


def test_tag_resource_of_a_missing_table_is_resource_not_found(ddb: BaseClient) -> None:
    arn = arn_of(unique_name())
    assert failure(ddb.tag_resource, ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ResourceNotFoundException", f"Requested resource not found: ResourceArn: {arn} not found",
    )


def test_list_tags_of_a_deleted_table_is_resource_not_found(ddb: BaseClient) -> None:
    name = create_table(ddb, unique_name(), Tags=[{"Key": "k", "Value": "v"}])
    ddb.delete_table(TableName=name)
    assert failure(ddb.list_tags_of_resource, ResourceArn=arn_of(name)) == (
        "ResourceNotFoundException",
        f"Requested resource not found: ResourceArn: {arn_of(name)} not found",
    )


def test_tag_resource_without_resource_arn_is_rejected(raw_ddb: BaseClient) -> None:
    assert failure(raw_ddb.tag_resource, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ValidationException",
        "1 validation error detected: Value null at 'resourceArn' failed to satisfy constraint: "
        "Member must not be null",
    )


# --- DescribeEndpoints, DescribeLimits -----------------------------------------------------


def test_describe_endpoints_names_the_regional_endpoint(ddb: BaseClient) -> None:
    assert ddb.describe_endpoints()["Endpoints"] == [
        {"Address": f"dynamodb.{REGION}.amazonaws.com", "CachePeriodInMinutes": 1440}
    ]


def test_describe_limits_reports_the_default_account_and_table_maximums(ddb: BaseClient) -> None:
    limits = ddb.describe_limits()
    del limits["ResponseMetadata"]
    assert limits == {
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }


# --- the wire protocol -----------------------------------------------------------------------


def test_unknown_target_is_an_unknown_operation_exception(engine: EngineProcess) -> None:
    status, body = post(engine.endpoint, "DynamoDB_20120810.MakeCoffee", b"{}")
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#UnknownOperationException"


def test_request_without_a_target_is_an_unknown_operation_exception(engine: EngineProcess) -> None:
    status, body = post(engine.endpoint, None, b"{}")
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#UnknownOperationException"


def test_malformed_json_body_is_a_serialization_exception(engine: EngineProcess) -> None:
    status, body = post(engine.endpoint, "DynamoDB_20120810.ListTables", b'{"Limit": ')
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#SerializationException"


def test_member_of_the_wrong_json_type_is_a_serialization_exception(engine: EngineProcess) -> None:
    status, body = post(engine.endpoint, "DynamoDB_20120810.ListTables", b'{"Limit": "ten"}')
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#SerializationException"


def test_engine_keeps_serving_after_bad_requests(engine: EngineProcess, ddb: BaseClient) -> None:
    post(engine.endpoint, "DynamoDB_20120810.MakeCoffee", b"{}")
    post(engine.endpoint, "DynamoDB_20120810.ListTables", b"\x00not json")
    status, body = post(engine.endpoint, "DynamoDB_20120810.ListTables", b"{}")
    assert status == 200
    assert "TableNames" in body
    assert "TableNames" in ddb.list_tables()


# --- persistence -----------------------------------------------------------------------------


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Callable[[], EngineProcess]]:
    """Starts engines on one data directory; stops whichever is running at the end."""
    running: list[EngineProcess] = []

    def start() -> EngineProcess:
        if running:
            running.pop().stop()
        running.append(start_engine(tmp_path / "data"))
        return running[-1]

    yield start
    for process in running:
        process.stop()


def test_tables_and_their_settings_survive_an_engine_restart(
    restartable: Callable[[], EngineProcess],
) -> None:
    first = restartable().client()
    name = create_table(first, "survivor", Tags=[{"Key": "team", "Value": "storage"}])
    enable_stream(first, name, "KEYS_ONLY")
    first.update_table(TableName=name, DeletionProtectionEnabled=True)
    before = described(first, name)

    again = restartable().client()
    after = described(again, name)
    assert again.list_tables()["TableNames"] == [name]
    for member in ("TableArn", "TableId", "KeySchema", "AttributeDefinitions", "CreationDateTime",
                   "BillingModeSummary", "StreamSpecification", "LatestStreamLabel",
                   "DeletionProtectionEnabled"):
        assert after[member] == before[member], member
    assert tags_of(again, name) == {"team": "storage"}


# --- decisions that depend on time, with the time given ----------------------------------------

OCT_9_2026 = datetime(2026, 10, 9, tzinfo=UTC).timestamp()


def four_decreases_by(moment: float) -> Throughput:
    return Throughput(read=6, write=10, last_decrease=moment, decreases_today=4)


def test_a_decrease_is_admitted_an_hour_after_the_last_once_four_are_spent() -> None:
    last = OCT_9_2026 + 3600
    after = plan_throughput(four_decreases_by(last), Throughput(5, 10), last + 3600)
    assert (after.read, after.decreases_today, after.last_decrease) == (5, 5, last + 3600)


def test_a_decrease_within_the_hour_after_four_is_refused() -> None:
    last = OCT_9_2026 + 3600
    with pytest.raises(LimitExceededException):
        plan_throughput(four_decreases_by(last), Throughput(5, 10), last + 3599)


def test_the_decrease_count_starts_again_at_midnight_utc() -> None:
    last = OCT_9_2026 - 60  # 23:59 the day before
    after = plan_throughput(four_decreases_by(last), Throughput(5, 10), OCT_9_2026 + 1)
    assert after.decreases_today == 1


def test_limit_messages_spell_times_as_dynamodb_does() -> None:
    assert long_utc_time(OCT_9_2026 + 21 * 60 + 34) == (
        "Friday, October 9, 2026 at 12:21:34 AM Coordinated Universal Time"
    )
    assert long_utc_time(OCT_9_2026 + 13 * 3600 + 5) == (
        "Friday, October 9, 2026 at 1:00:05 PM Coordinated Universal Time"
    )


def test_stream_label_is_the_utc_start_time_to_the_millisecond() -> None:
    assert new_stream_label(OCT_9_2026 + 3723.4567) == "2026-10-09T01:02:03.456"


def test_stream_label_enabled_again_within_a_millisecond_still_changes() -> None:
    first = new_stream_label(OCT_9_2026)
    assert new_stream_label(OCT_9_2026, previous=first) == "2026-10-09T00:00:00.001"


def test_a_stream_arn_names_a_resource_that_cannot_be_tagged_yet() -> None:
    arn = f"{arn_of('orders')}/stream/2026-10-09T00:00:00.000"
    assert resource_of(arn, REGION, ACCOUNT) == Resource("orders", stream=True)
