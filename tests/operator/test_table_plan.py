"""What the operator asks a Table's engine for: pure plans from a spec and a described table."""

from __future__ import annotations

from typing import Any

from tablekeeper.controllers.table_plan import EngineTable, create_table_request, plan_changes
from tablekeeper.resources.table import TableSpec

KEY: dict[str, Any] = {"partitionKey": {"name": "pk", "type": "S"},
                       "sortKey": {"name": "sk", "type": "N"}}
GSI: dict[str, Any] = {"indexName": "byStatus",
                       "keySchema": {"partitionKey": {"name": "status", "type": "S"}}}


def spec(**fields: Any) -> TableSpec:
    return TableSpec.model_validate({"keySchema": KEY, **fields})


def described(**overrides: Any) -> EngineTable:
    """A table as DescribeTable, DescribeTimeToLive and ListTagsOfResource would show it."""
    description: dict[str, Any] = {
        "TableName": "Orders",
        "TableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/Orders",
        "TableStatus": "ACTIVE",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "N"},
                                 {"AttributeName": "status", "AttributeType": "S"}],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ItemCount": 3,
        "TableSizeBytes": 120,
    }  # fmt: skip
    ttl = overrides.pop("ttl", {"TimeToLiveStatus": "DISABLED"})
    tags = overrides.pop("tags", {})
    description.update(overrides)
    return EngineTable.from_wire(description, ttl, tags)


def index(name: str = "byStatus", status: str = "ACTIVE", projection: str = "ALL") -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": projection}, "IndexStatus": status}  # fmt: skip


def summaries(plan: Any) -> list[str]:
    return [change.summary for change in plan.changes]


def test_a_table_that_matches_its_spec_needs_nothing() -> None:
    assert plan_changes(spec(), described()).done


def test_the_create_request_derives_attribute_definitions_and_leaves_ttl_for_later() -> None:
    request = create_table_request(spec(globalSecondaryIndexes=[GSI], ttl={"attributeName": "exp"},
                                        tags={"team": "a"}), "Orders")  # fmt: skip
    assert request["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
        {"AttributeName": "status", "AttributeType": "S"},
    ]  # fmt: skip
    assert request["GlobalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "ALL"}
    assert request["Tags"] == [{"Key": "team", "Value": "a"}]
    assert "TimeToLiveSpecification" not in request


def test_a_new_index_in_the_spec_is_created_with_its_attribute_definitions() -> None:
    (change,) = plan_changes(spec(globalSecondaryIndexes=[GSI]), described()).changes
    assert change.operation == "UpdateTable" and change.starts_work
    assert change.request["GlobalSecondaryIndexUpdates"] == [{"Create": {
        "IndexName": "byStatus", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"}}}]  # fmt: skip
    assert {"AttributeName": "status", "AttributeType": "S"} in change.request["AttributeDefinitions"]


def test_an_index_gone_from_the_spec_is_deleted() -> None:
    plan = plan_changes(spec(), described(GlobalSecondaryIndexes=[index()]))
    assert summaries(plan) == ["remove index byStatus"]


def test_a_changed_index_projection_is_refused_not_rebuilt() -> None:
    existing = described(GlobalSecondaryIndexes=[index(projection="KEYS_ONLY")])
    plan = plan_changes(spec(globalSecondaryIndexes=[GSI]), existing)
    assert not plan.changes and "globalSecondaryIndexes[byStatus]" in plan.refused[0]


def test_a_changed_key_schema_is_refused() -> None:
    other = {"partitionKey": {"name": "pk", "type": "N"}, "sortKey": {"name": "sk", "type": "N"}}
    plan = plan_changes(TableSpec.model_validate({"keySchema": other}), described())
    assert plan.refused == ("keySchema is immutable: the table's key differs from the spec's",)


def test_local_indexes_that_differ_from_the_spec_are_refused() -> None:
    lsi = {"indexName": "bySk2", "sortKey": {"name": "sk2", "type": "S"}}
    plan = plan_changes(spec(localSecondaryIndexes=[lsi]), described())
    assert plan.refused and "localSecondaryIndexes is immutable" in plan.refused[0]


def test_a_busy_table_is_waited_for() -> None:
    assert plan_changes(spec(), described(GlobalSecondaryIndexes=[index(status="CREATING")])).busy
    assert plan_changes(spec(), described(TableStatus="UPDATING")).busy


def test_a_stream_with_another_view_type_is_turned_off_first() -> None:
    stream_on = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}}
    plan = plan_changes(spec(stream={"viewType": "NEW_IMAGE"}), described(**stream_on))
    assert summaries(plan) == ["disable the stream"]
    plan = plan_changes(spec(stream={"viewType": "NEW_IMAGE"}), described())
    enable = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}}
    assert plan.changes[0].request == enable


def test_ttl_is_turned_on_and_an_attribute_change_turns_it_off_first() -> None:
    plan = plan_changes(spec(ttl={"attributeName": "exp"}), described())
    assert plan.changes[0].request == {"TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"}}
    on_other = {"TimeToLiveStatus": "ENABLED", "AttributeName": "old"}
    plan = plan_changes(spec(ttl={"attributeName": "exp"}), described(ttl=on_other))
    assert plan.changes[0].request == {"TimeToLiveSpecification": {"Enabled": False, "AttributeName": "old"}}


def test_ttl_being_enabled_on_the_wanted_attribute_needs_nothing() -> None:
    enabling = {"TimeToLiveStatus": "ENABLING", "AttributeName": "exp"}
    assert plan_changes(spec(ttl={"attributeName": "exp"}), described(ttl=enabling)).done


def test_tags_are_set_and_removed_to_match_the_spec() -> None:
    plan = plan_changes(spec(tags={"team": "b", "new": "x"}), described(tags={"team": "a", "stale": "y"}))
    untag, tag = plan.changes
    assert untag.request == {"TagKeys": ["stale"]}
    assert tag.request == {"Tags": [{"Key": "team", "Value": "b"}, {"Key": "new", "Value": "x"}]}


def test_deletion_protection_follows_the_spec() -> None:
    plan = plan_changes(spec(deletionProtection=True), described())
    assert [c.request for c in plan.changes] == [{"DeletionProtectionEnabled": True}]


def test_switching_to_provisioned_sets_table_and_index_capacity_in_one_call() -> None:
    capacity = {"readCapacityUnits": 5, "writeCapacityUnits": 5}
    wanted = spec(billingMode="PROVISIONED", provisionedThroughput=capacity,
                  globalSecondaryIndexes=[{**GSI, "provisionedThroughput": capacity}])  # fmt: skip
    (change,) = plan_changes(wanted, described(GlobalSecondaryIndexes=[index()])).changes
    assert change.request["BillingMode"] == "PROVISIONED"
    assert change.request["GlobalSecondaryIndexUpdates"][0]["Update"]["IndexName"] == "byStatus"


def test_the_description_gives_counts_arn_and_status() -> None:
    table = described()
    assert (table.item_count, table.size_bytes, table.status) == (3, 120, "ACTIVE")
    assert table.arn.endswith("table/Orders")
