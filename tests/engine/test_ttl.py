"""Time to live against a real engine sweeping every 0.2 s, through boto3.

Every expected message is DynamoDB's own wording.  What needs a clock that
moves faster than real time (disabling an hour after enabling, the sweeper
standing still) is in tests/unit/test_ttl_worker.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import EngineProcess, create_table, make_client, start_engine, unique_name

SWEEP_INTERVAL = "0.2"
DEADLINE = 5.0  # many sweep intervals
TOO_SOON = "Time to live has been modified multiple times within a fixed interval"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = start_engine(tmp_path_factory.mktemp("ttl-engine"), "--ttl-interval", SWEEP_INTERVAL)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def raw_ddb(engine: EngineProcess) -> BaseClient:
    """A client that sends what it is given: the server, not botocore, must refuse it."""
    return make_client(engine.endpoint, config=Config(parameter_validation=False,
                                                      retries={"max_attempts": 1}))


@pytest.fixture
def table(ddb: BaseClient) -> str:
    return create_table(ddb, unique_name("ttl"))


def enable(ddb: BaseClient, table: str, attribute: str = "exp") -> dict[str, Any]:
    return ddb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )


def describe(ddb: BaseClient, table: str) -> dict[str, Any]:
    return ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]


def error_of(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def wait_for(condition: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def keys(ddb: BaseClient, table: str) -> list[str]:
    return sorted(item["pk"]["S"] for item in ddb.scan(TableName=table, ConsistentRead=True)["Items"])


def put(ddb: BaseClient, table: str, pk: str, **attributes: dict[str, str]) -> None:
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, **attributes})


def epoch(offset: float) -> dict[str, str]:
    return {"N": str(int(time.time() + offset))}


# --- DescribeTimeToLive and UpdateTimeToLive ----------------------------------------------------


def test_a_new_table_has_ttl_disabled(ddb: BaseClient, table: str) -> None:
    assert describe(ddb, table) == {"TimeToLiveStatus": "DISABLED"}


def test_enabling_ttl_echoes_the_specification_and_then_describes_enabled(
    ddb: BaseClient, table: str
) -> None:
    response = enable(ddb, table)
    assert response["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "exp"}
    assert wait_for(lambda: describe(ddb, table)["TimeToLiveStatus"] == "ENABLED")
    assert describe(ddb, table) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}


def test_a_table_arn_names_the_table(ddb: BaseClient, table: str) -> None:
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    enable(ddb, arn)
    assert describe(ddb, arn)["AttributeName"] == "exp"


def test_enabling_ttl_again_is_refused(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    assert error_of(lambda: enable(ddb, table)) == (
        "ValidationException", "TimeToLive is already enabled"
    )


@pytest.mark.parametrize("enabled", [True, False])
def test_naming_another_attribute_while_ttl_is_on_is_refused(
    ddb: BaseClient, table: str, enabled: bool
) -> None:
    enable(ddb, table)
    spec = {"Enabled": enabled, "AttributeName": "other"}
    assert error_of(lambda: ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)) == (
        "ValidationException",
        "TimeToLive is active on a different AttributeName: current AttributeName is exp",
    )


def test_disabling_ttl_that_is_off_is_refused(ddb: BaseClient, table: str) -> None:
    spec = {"Enabled": False, "AttributeName": "exp"}
    assert error_of(lambda: ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)) == (
        "ValidationException", "TimeToLive is already disabled"
    )


def test_a_second_change_within_the_hour_is_refused(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    spec = {"Enabled": False, "AttributeName": "exp"}
    assert error_of(lambda: ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)) == (
        "ValidationException", TOO_SOON
    )
    assert wait_for(lambda: describe(ddb, table)["TimeToLiveStatus"] == "ENABLED")


def test_ttl_of_a_missing_table_is_resource_not_found(ddb: BaseClient) -> None:
    name = unique_name("missing")
    expected = ("ResourceNotFoundException", f"Requested resource not found: Table: {name} not found")
    assert error_of(lambda: describe(ddb, name)) == expected
    assert error_of(lambda: enable(ddb, name)) == expected


def test_a_missing_specification_is_refused(raw_ddb: BaseClient, table: str) -> None:
    assert error_of(lambda: raw_ddb.update_time_to_live(TableName=table)) == (
        "ValidationException",
        "1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy "
        "constraint: Member must not be null",
    )


def test_a_specification_without_enabled_is_refused(raw_ddb: BaseClient, table: str) -> None:
    spec = {"AttributeName": "exp"}
    call = lambda: raw_ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)  # noqa: E731
    assert error_of(call) == (
        "ValidationException",
        "1 validation error detected: Value null at 'timeToLiveSpecification.enabled' failed to "
        "satisfy constraint: Member must not be null",
    )


@pytest.mark.parametrize(("name", "constraint"), [
    ("", "Member must have length greater than or equal to 1"),
    ("a" * 256, "Member must have length less than or equal to 255"),
])
def test_an_attribute_name_of_the_wrong_length_is_refused(
    raw_ddb: BaseClient, table: str, name: str, constraint: str
) -> None:
    spec = {"Enabled": True, "AttributeName": name}
    call = lambda: raw_ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)  # noqa: E731
    assert error_of(call) == (
        "ValidationException",
        f"1 validation error detected: Value '{name}' at 'timeToLiveSpecification.attributeName' "
        f"failed to satisfy constraint: {constraint}",
    )


def test_the_longest_attribute_name_is_accepted(ddb: BaseClient, table: str) -> None:
    enable(ddb, table, "a" * 255)
    assert describe(ddb, table)["AttributeName"] == "a" * 255


def test_enabled_that_is_not_a_boolean_is_a_serialization_error(
    raw_ddb: BaseClient, table: str
) -> None:
    spec = {"Enabled": "yes", "AttributeName": "exp"}
    code, _ = error_of(lambda: raw_ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec))
    assert code == "SerializationException"


# --- expiry -------------------------------------------------------------------------------------


def test_items_past_their_expiry_disappear_and_the_rest_stay(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    put(ddb, table, "past", exp=epoch(-60))
    put(ddb, table, "just-now", exp=epoch(-1))
    put(ddb, table, "future", exp=epoch(+3600))
    put(ddb, table, "string", exp={"S": str(int(time.time() - 60))})
    put(ddb, table, "other-attribute", expires=epoch(-60))
    put(ddb, table, "no-ttl")
    assert wait_for(lambda: keys(ddb, table) == ["future", "no-ttl", "other-attribute", "string"])
    time.sleep(1.0)  # five more sweeps leave them alone
    assert keys(ddb, table) == ["future", "no-ttl", "other-attribute", "string"]


def test_an_item_expires_once_its_time_comes(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    put(ddb, table, "soon", exp=epoch(+1))
    assert keys(ddb, table) == ["soon"]
    assert wait_for(lambda: keys(ddb, table) == [])


def test_enabling_ttl_on_a_populated_table_expires_the_items_already_there(
    ddb: BaseClient, table: str
) -> None:
    for i in range(40):
        put(ddb, table, f"old-{i:02}", exp=epoch(-60))
    put(ddb, table, "future", exp=epoch(+3600))
    enable(ddb, table)
    assert wait_for(lambda: keys(ddb, table) == ["future"])
    assert describe(ddb, table)["TimeToLiveStatus"] == "ENABLED"


def test_renewing_an_items_expiry_keeps_it(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    put(ddb, table, "renewed", exp=epoch(+1))
    ddb.update_item(TableName=table, Key={"pk": {"S": "renewed"}}, UpdateExpression="SET exp = :e",
                    ExpressionAttributeValues={":e": epoch(+3600)})
    time.sleep(2.5)
    assert keys(ddb, table) == ["renewed"]


def test_moving_an_items_expiry_into_the_past_deletes_it(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    put(ddb, table, "moved", exp=epoch(+3600))
    ddb.update_item(TableName=table, Key={"pk": {"S": "moved"}}, UpdateExpression="SET exp = :e",
                    ExpressionAttributeValues={":e": epoch(-60)})
    assert wait_for(lambda: keys(ddb, table) == [])


def test_items_from_batches_and_transactions_expire_too(ddb: BaseClient, table: str) -> None:
    enable(ddb, table)
    ddb.batch_write_item(RequestItems={table: [
        {"PutRequest": {"Item": {"pk": {"S": "batch"}, "exp": epoch(-60)}}},
    ]})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": {"S": "transaction"}, "exp": epoch(-60)}}},
    ])
    assert wait_for(lambda: keys(ddb, table) == [])
