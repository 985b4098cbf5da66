"""The Table model refuses what DynamoDB (and the CRD) refuse, with the same words."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from tablekeeper.resources import Table, TableSpec
from tablekeeper.resources.table import ScalarAttributeType

KEYS = {"partitionKey": {"name": "pk", "type": "S"}, "sortKey": {"name": "sk", "type": "N"}}


def spec(**fields: Any) -> TableSpec:
    return TableSpec.model_validate({"keySchema": KEYS, **fields})


def gsi(name: str, partition: str = "g", type_: str = "S", **fields: Any) -> dict[str, Any]:
    return {"indexName": name, "keySchema": {"partitionKey": {"name": partition, "type": type_}}, **fields}


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    return str(caught.value)


def test_defaults_are_on_demand_billing_power_loss_durability_and_a_1gi_volume() -> None:
    table = spec()
    assert (table.billing_mode, table.durability, table.storage.size) == (
        "PAY_PER_REQUEST",
        "power-loss",
        "1Gi",
    )
    assert table.deletion_protection is False and table.stream is None and table.ttl is None


@pytest.mark.parametrize("name", ["ab", "orders table", "x" * 256, "naïve"])
def test_a_bad_table_name_is_refused(name: str) -> None:
    message = refusal(tableName=name)
    assert "tableName" in message
    assert any(words in message for words in ("at least 3", "at most 255", "should match pattern"))


def test_twenty_one_global_secondary_indexes_are_refused() -> None:
    message = refusal(globalSecondaryIndexes=[gsi(f"gsi{i}") for i in range(21)])
    assert "globalSecondaryIndexes" in message and "at most 20" in message


def test_six_local_secondary_indexes_are_refused() -> None:
    lsis = [{"indexName": f"lsi{i}", "sortKey": {"name": f"a{i}", "type": "S"}} for i in range(6)]
    assert "at most 5" in refusal(localSecondaryIndexes=lsis)


def test_two_indexes_with_one_name_are_refused() -> None:
    assert "duplicate indexName 'byX'" in refusal(globalSecondaryIndexes=[gsi("byX"), gsi("byX", "h")])
    lsi = {"indexName": "byX", "sortKey": {"name": "x", "type": "S"}}
    assert "secondary indexes: duplicate indexName 'byX'" in refusal(
        globalSecondaryIndexes=[gsi("byX")], localSecondaryIndexes=[lsi]
    )


def test_local_secondary_indexes_need_a_table_with_a_sort_key() -> None:
    lsi = {"indexName": "byX", "sortKey": {"name": "x", "type": "S"}}
    with pytest.raises(ValidationError, match="local secondary indexes need a table with a sort key"):
        TableSpec.model_validate(
            {"keySchema": {"partitionKey": KEYS["partitionKey"]}, "localSecondaryIndexes": [lsi]}
        )


def test_provisioned_billing_needs_throughput_and_on_demand_refuses_it() -> None:
    throughput = {"readCapacityUnits": 5, "writeCapacityUnits": 5}
    assert "provisionedThroughput is required" in refusal(billingMode="PROVISIONED")
    assert "refused otherwise" in refusal(provisionedThroughput=throughput)
    assert (
        spec(billingMode="PROVISIONED", provisionedThroughput=throughput).provisioned_throughput is not None
    )


def test_under_provisioned_billing_every_gsi_needs_throughput() -> None:
    throughput = {"readCapacityUnits": 5, "writeCapacityUnits": 5}
    message = refusal(
        billingMode="PROVISIONED", provisionedThroughput=throughput, globalSecondaryIndexes=[gsi("gsi1")]
    )
    assert "every global secondary index needs provisionedThroughput" in message


def test_include_projection_needs_non_key_attributes_and_others_refuse_them() -> None:
    assert "nonKeyAttributes must be given with projectionType INCLUDE" in refusal(
        globalSecondaryIndexes=[gsi("gsi1", projection={"projectionType": "INCLUDE"})]
    )
    assert "and only then" in refusal(
        globalSecondaryIndexes=[gsi("gsi1", projection={"projectionType": "ALL", "nonKeyAttributes": ["a"]})]
    )


def test_more_than_100_projected_attributes_over_all_indexes_are_refused() -> None:
    def include(names: range) -> dict[str, Any]:
        return {"projectionType": "INCLUDE", "nonKeyAttributes": [f"a{i}" for i in names]}

    message = refusal(
        globalSecondaryIndexes=[
            gsi("gsi1", projection=include(range(60))),
            gsi("gsi2", projection=include(range(60, 101))),
        ]
    )
    assert "project 101 nonKeyAttributes in all; DynamoDB allows at most 100" in message


def test_an_enabled_stream_needs_a_view_type() -> None:
    assert "viewType is required when the stream is enabled" in refusal(stream={"enabled": True})
    assert spec(stream={"enabled": False}).stream is not None


def test_tag_keys_are_1_to_128_characters_and_aws_prefix_is_reserved() -> None:
    assert "tags" in refusal(tags={"k" * 129: "v"})
    assert "tag keys starting with aws: are reserved: aws:owner" in refusal(tags={"aws:owner": "x"})


def test_sort_key_must_differ_from_partition_key() -> None:
    with pytest.raises(
        ValidationError, match="the sort key must be another attribute than the partition key"
    ):
        TableSpec.model_validate({"keySchema": {"partitionKey": {"name": "a", "type": "S"},
                                                "sortKey": {"name": "a", "type": "S"}}})  # fmt: skip


def test_attribute_definitions_are_derived_from_every_key_once() -> None:
    table = spec(
        globalSecondaryIndexes=[gsi("gsi1", "status"), gsi("gsi2", "pk")],
        localSecondaryIndexes=[{"indexName": "lsi1", "sortKey": {"name": "created", "type": "N"}}],
    )
    assert table.attribute_definitions() == {
        "pk": ScalarAttributeType.S, "sk": ScalarAttributeType.N,
        "status": ScalarAttributeType.S, "created": ScalarAttributeType.N,
    }  # fmt: skip


def test_one_attribute_with_two_types_is_refused() -> None:
    message = refusal(globalSecondaryIndexes=[gsi("gsi1", "sk", "S")])
    assert "attribute 'sk' is a key with type N and with type S; one attribute has one type" in message


def test_a_quantity_that_is_not_one_is_refused() -> None:
    assert "is not a Kubernetes quantity" in refusal(storage={"size": "lots"})
    assert spec(resources={"limits": {"cpu": 2, "memory": "1.5Gi"}}).resources is not None


def test_unknown_spec_fields_are_refused_so_an_old_operator_never_half_understands_a_spec() -> None:
    assert "Extra inputs are not permitted" in refusal(pointInTimeRecovery=True)


def test_table_name_defaults_to_metadata_name() -> None:
    table = Table.model_validate({"metadata": {"name": "orders"}, "spec": {"keySchema": KEYS}})
    assert table.table_name == "orders"
    named = Table.model_validate(
        {"metadata": {"name": "orders"}, "spec": {"keySchema": KEYS, "tableName": "Orders"}}
    )
    assert named.table_name == "Orders"


def test_a_short_metadata_name_without_table_name_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=re.escape("metadata.name is the table name when spec.tableName is left out")
    ):
        Table.model_validate({"metadata": {"name": "ab"}, "spec": {"keySchema": KEYS}})


def test_python_names_are_snake_case_and_the_wire_is_camel_case() -> None:
    table = spec(tableName="Orders", deletionProtection=True)
    assert table.table_name == "Orders" and table.deletion_protection
    assert TableSpec(key_schema=table.key_schema, table_name="Orders").model_dump(exclude_unset=True) == {
        "keySchema": KEYS, "tableName": "Orders"
    }  # fmt: skip


def _changed(table: Table, **spec_fields: Any) -> Table:
    wire = table.to_wire()
    wire["spec"].update(spec_fields)
    return Table.model_validate(wire)


def test_changing_keys_lsis_or_storage_class_is_refused_like_the_crd_refuses_it() -> None:
    lsi = {"indexName": "byDate", "sortKey": {"name": "date", "type": "S"}}
    old = Table.model_validate(
        {"metadata": {"name": "orders"}, "spec": {"keySchema": KEYS, "localSecondaryIndexes": [lsi]}}
    )
    new = _changed(
        old,
        keySchema={"partitionKey": {"name": "pk", "type": "S"}},
        localSecondaryIndexes=[],
        storage={"size": "1Gi", "storageClassName": "slow"},
    )
    assert new.refused_changes(old) == [
        "keySchema is immutable",
        "localSecondaryIndexes is immutable",
        "storageClassName is immutable",
    ]


def test_changing_the_effective_table_name_is_refused_but_spelling_out_the_same_name_is_not() -> None:
    old = Table.model_validate({"metadata": {"name": "orders"}, "spec": {"keySchema": KEYS}})
    assert _changed(old, tableName="orders").refused_changes(old) == []
    assert _changed(old, tableName="Orders").refused_changes(old) == ["the table name is immutable"]


def test_growing_the_volume_adding_indexes_and_changing_billing_are_allowed() -> None:
    old = Table.model_validate({"metadata": {"name": "orders"}, "spec": {"keySchema": KEYS}})
    new = _changed(old, storage={"size": "50Gi"}, globalSecondaryIndexes=[gsi("byStatus")], tags={"a": "b"})
    assert new.refused_changes(old) == []
