"""The restore plan (vault/restore.py plan_target): pure, from a backup's definition to the new table's."""

from __future__ import annotations

import pytest

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.operations.index_specs import IndexSpec
from tablekeeper.engine.tables import (
    IndexDefinition,
    Projection,
    RestoreSummary,
    StreamSpec,
    TableDefinition,
    Throughput,
)
from tablekeeper.vault.restore import Overrides, plan_target

NOW = 1_750_000_000.0
CREATED = 1_700_000_000.0
INVALID = "One or more parameter values were invalid: "


def _key(hash_name: str, range_name: str | None = None, range_type: str = "S") -> KeySchema:
    return KeySchema(KeyAttribute(hash_name, "S"),
                     None if range_name is None else KeyAttribute(range_name, range_type))


def _source(**changes: object) -> TableDefinition:
    """A provisioned table with an LSI, an ACTIVE GSI, a backfilling GSI and a DELETING GSI,
    and everything a restore does not carry over."""
    table = TableDefinition(
        name="orders",
        table_id="a" * 32,
        key_schema=_key("pk", "sk", "N"),
        attribute_definitions=(("pk", "S"), ("sk", "N"), ("placed", "S"), ("city", "S"),
                               ("state", "S"), ("gone", "S")),
        created=CREATED,
        region="eu-west-1",
        account="111111111111",
        billing_mode="PROVISIONED",
        throughput=Throughput(7, 3, last_increase=CREATED + 5, decreases_today=2),
        indexes=(
            IndexDefinition("by-placed", _key("pk", "placed"), Projection("KEYS_ONLY"), local=True),
            IndexDefinition("by-city", _key("city"), Projection("INCLUDE", ("total",)), False,
                            Throughput(2, 2)),
            IndexDefinition("by-state", _key("state"), Projection("ALL"), False, Throughput(1, 1),
                            status="CREATING", backfilling=True),
            IndexDefinition("by-gone", _key("gone"), Projection("ALL"), False, Throughput(1, 1),
                            status="DELETING"),
        ),
        stream=StreamSpec(True, "NEW_IMAGE", "2023-11-14T22:13:20.000", first_sequence=4),
        past_streams=(StreamSpec(False, "KEYS_ONLY", None, 1, 3, CREATED + 1),),
        sse=(("Status", "ENABLED"), ("SSEType", "KMS")),
        table_class="STANDARD_INFREQUENT_ACCESS",
        deletion_protection=True,
        tags=(("team", "billing"),),
        ttl_attribute="expires",
        ttl_enabled=True,
        ttl_status="ENABLED",
        ttl_changed=CREATED + 2,
        restore=RestoreSummary(CREATED - 10, False, source_backup_arn="arn:earlier"),
    )
    return table.replace(**changes)


def _plan(source: TableDefinition | None = None, overrides: Overrides | None = None) -> TableDefinition:
    return plan_target(source or _source(), "orders-restored", overrides or Overrides(),
                       now=NOW, region="us-west-2", account="222222222222", table_id="b" * 32)


GSI_THROUGHPUT = Throughput(4, 4)


def _gsi(name: str, *keys: str, throughput: Throughput | None = GSI_THROUGHPUT) -> IndexSpec:
    kinds = ("HASH", "RANGE")
    return IndexSpec(name, tuple(zip(keys, kinds, strict=False)), "ALL", None, throughput)


# --- what is carried over ---------------------------------------------------------------------


def test_the_key_schema_billing_mode_sse_and_table_class_come_from_the_backup() -> None:
    planned = _plan()
    assert planned.key_schema == _key("pk", "sk", "N")
    assert planned.billing_mode == "PROVISIONED"
    assert planned.sse == (("Status", "ENABLED"), ("SSEType", "KMS"))
    assert planned.table_class == "STANDARD_INFREQUENT_ACCESS"


def test_provisioned_throughput_is_carried_without_its_change_history() -> None:
    assert _plan().throughput == Throughput(7, 3)


def test_indexes_are_carried_active_and_a_deleting_one_is_dropped() -> None:
    planned = _plan()
    assert [(i.name, i.local, i.status, i.backfilling) for i in planned.indexes] == [
        ("by-placed", True, "ACTIVE", False),
        ("by-city", False, "ACTIVE", False),
        ("by-state", False, "ACTIVE", False),
    ]
    assert planned.index("by-city") == _source().index("by-city")


def test_attribute_definitions_keep_only_those_a_key_uses() -> None:
    assert _plan().attribute_definitions == (
        ("pk", "S"), ("sk", "N"), ("placed", "S"), ("city", "S"), ("state", "S"),
    )


def test_the_new_table_has_the_target_name_id_time_region_and_account() -> None:
    planned = _plan()
    assert (planned.name, planned.table_id, planned.created) == ("orders-restored", "b" * 32, NOW)
    assert (planned.region, planned.account) == ("us-west-2", "222222222222")
    assert planned.arn == "arn:aws:dynamodb:us-west-2:222222222222:table/orders-restored"


def test_without_a_table_id_each_plan_gets_a_fresh_one() -> None:
    first = plan_target(_source(), "t", Overrides(), now=NOW, region="r", account="a")
    second = plan_target(_source(), "t", Overrides(), now=NOW, region="r", account="a")
    assert first.table_id != second.table_id
    assert len(first.table_id) == 32 and first.table_id != _source().table_id


def test_the_planned_table_is_active_and_not_yet_marked_restoring() -> None:
    planned = _plan()
    assert planned.status == "ACTIVE"
    assert planned.restore is None


# --- what is not carried over -----------------------------------------------------------------


def test_streams_current_and_past_are_not_carried() -> None:
    planned = _plan()
    assert planned.stream is None
    assert planned.past_streams == ()


def test_ttl_is_not_carried() -> None:
    planned = _plan()
    assert (planned.ttl_attribute, planned.ttl_enabled, planned.ttl_status, planned.ttl_changed) == (
        None, False, "DISABLED", None)


def test_tags_and_deletion_protection_are_not_carried() -> None:
    planned = _plan()
    assert planned.tags == ()
    assert planned.deletion_protection is False


# --- overrides --------------------------------------------------------------------------------


def test_an_empty_global_index_override_restores_without_global_indexes() -> None:
    planned = _plan(overrides=Overrides(global_indexes=()))
    assert [index.name for index in planned.indexes] == ["by-placed"]


def test_dropping_global_indexes_prunes_their_attribute_definitions() -> None:
    planned = _plan(overrides=Overrides(global_indexes=()))
    assert planned.attribute_definitions == (("pk", "S"), ("sk", "N"), ("placed", "S"))


def test_a_global_index_override_replaces_the_global_indexes_and_keeps_the_local_ones() -> None:
    planned = _plan(overrides=Overrides(global_indexes=(_gsi("by-state-new", "state", "sk"),)))
    assert [(i.name, i.local) for i in planned.indexes] == [("by-placed", True), ("by-state-new", False)]
    new = planned.index("by-state-new")
    assert new is not None
    assert new.key_schema == KeySchema(KeyAttribute("state", "S"), KeyAttribute("sk", "N"))
    assert new.throughput == Throughput(4, 4)
    assert planned.attribute_definitions == (("pk", "S"), ("sk", "N"), ("placed", "S"), ("state", "S"))


def test_a_global_index_override_on_an_attribute_the_backup_does_not_define_is_refused() -> None:
    with pytest.raises(ValidationException) as error:
        _plan(overrides=Overrides(global_indexes=(_gsi("by-color", "color"),)))
    assert error.value.message is not None
    assert error.value.message.startswith(
        INVALID + "Some index key attributes are not defined in AttributeDefinitions. Keys: [color]"
    )


def test_a_global_index_override_of_a_provisioned_table_needs_throughput() -> None:
    with pytest.raises(ValidationException) as error:
        _plan(overrides=Overrides(global_indexes=(_gsi("by-city-2", "city", throughput=None),)))
    assert error.value.message == INVALID + "ProvisionedThroughput is not specified for index: by-city-2"


def test_a_local_index_override_replaces_the_local_indexes() -> None:
    lsi = IndexSpec("by-city-local", (("pk", "HASH"), ("city", "RANGE")), "KEYS_ONLY", None, None)
    planned = _plan(overrides=Overrides(local_indexes=(lsi,)))
    assert [(i.name, i.local) for i in planned.indexes] == [
        ("by-city-local", True), ("by-city", False), ("by-state", False),
    ]
    assert ("placed", "S") not in planned.attribute_definitions


def test_an_empty_local_index_override_restores_without_local_indexes() -> None:
    planned = _plan(overrides=Overrides(local_indexes=()))
    assert all(not index.local for index in planned.indexes)
    assert ("placed", "S") not in planned.attribute_definitions


def test_an_override_index_named_like_a_kept_one_is_a_duplicate() -> None:
    lsi = IndexSpec("by-city", (("pk", "HASH"), ("city", "RANGE")), "KEYS_ONLY", None, None)
    with pytest.raises(ValidationException) as error:
        _plan(overrides=Overrides(local_indexes=(lsi,)))
    assert error.value.message == INVALID + "Duplicate index name: by-city"


def test_pay_per_request_override_makes_the_table_on_demand_without_throughput() -> None:
    planned = _plan(overrides=Overrides(billing_mode="PAY_PER_REQUEST"))
    assert planned.billing_mode == "PAY_PER_REQUEST"
    assert planned.throughput == Throughput()
    assert planned.billing_mode_changed == NOW


def test_pay_per_request_override_leaves_the_kept_global_indexes_without_throughput() -> None:
    planned = _plan(overrides=Overrides(billing_mode="PAY_PER_REQUEST"))
    assert [(i.name, i.throughput) for i in planned.indexes if not i.local] == [
        ("by-city", Throughput()), ("by-state", Throughput()),
    ]


def test_pay_per_request_override_with_a_throughput_override_is_refused() -> None:
    overrides = Overrides(billing_mode="PAY_PER_REQUEST", throughput=Throughput(5, 5))
    with pytest.raises(ValidationException) as error:
        _plan(overrides=overrides)
    assert error.value.message == (
        INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode "
        "is PAY_PER_REQUEST"
    )


def test_provisioned_override_of_an_on_demand_backup_without_throughput_is_refused() -> None:
    on_demand = _source(billing_mode="PAY_PER_REQUEST", throughput=Throughput(), indexes=())
    with pytest.raises(ValidationException) as error:
        _plan(on_demand, Overrides(billing_mode="PROVISIONED"))
    assert error.value.message == (
        INVALID + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode "
        "is PROVISIONED"
    )


def test_provisioned_override_of_an_on_demand_backup_takes_the_throughput_override() -> None:
    on_demand = _source(billing_mode="PAY_PER_REQUEST", throughput=Throughput(), indexes=())
    planned = _plan(on_demand, Overrides(billing_mode="PROVISIONED", throughput=Throughput(9, 8)))
    assert (planned.billing_mode, planned.throughput, planned.billing_mode_changed) == (
        "PROVISIONED", Throughput(9, 8), None)


def test_a_throughput_override_replaces_the_backups_throughput() -> None:
    assert _plan(overrides=Overrides(throughput=Throughput(20, 10))).throughput == Throughput(20, 10)


def test_an_sse_override_replaces_the_backups_encryption_settings() -> None:
    assert _plan(overrides=Overrides(sse=())).sse == ()


def test_planning_leaves_the_source_definition_unchanged() -> None:
    source = _source()
    _plan(source, Overrides(global_indexes=(), billing_mode="PAY_PER_REQUEST"))
    assert source == _source()
