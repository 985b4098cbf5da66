"""A Restore's decisions without a cluster or an engine: its source, its target Table, its progress
and status (controllers/restore_plan.py), the names and metrics they use."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import kopf
import pytest

from tablekeeper.controllers import naming
from tablekeeper.controllers.engine_client import EngineRestore
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.controllers.restore_plan import (
    BackupSource,
    RestoreOutcome,
    SourceNotReady,
    SourceRefused,
    SourceTable,
    backup_id_of_arn,
    backup_of_object,
    duration,
    is_final,
    made_by,
    progress,
    restore_overrides,
    restore_status_after,
    spec_of_table,
    target_spec,
    target_table,
    volume_size,
    with_restore_time,
)
from tablekeeper.controllers.restores import RestorePass
from tablekeeper.controllers.table_plan import EngineTable
from tablekeeper.resources.restore import Restore, RestoreSourceType, RestoreStatus, RestoreTarget
from tablekeeper.resources.table import TABLE
from tests.resources.support import closed, crd_on_disk, root_schema

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TABLE_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Orders"
BACKUP_ARN = f"{TABLE_ARN}/backup/01795746124738-4ec7d60b"


def key(partition: str, sort: str) -> list[dict[str, str]]:
    return [{"AttributeName": partition, "KeyType": "HASH"}, {"AttributeName": sort, "KeyType": "RANGE"}]


def described(billing: str = "PROVISIONED", **extra: Any) -> EngineTable:
    """A table as DescribeTable shows it: a composite key, one GSI, one LSI."""
    provisioned = billing == "PROVISIONED"
    throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 3} if provisioned else {}
    gsi: dict[str, Any] = {
        "IndexName": "byCustomer", "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total"]}, "IndexStatus": "ACTIVE",
    }  # fmt: skip
    if provisioned:
        gsi["ProvisionedThroughput"] = {"ReadCapacityUnits": 2, "WriteCapacityUnits": 1}
    wire = {
        "TableName": "Orders", "TableArn": TABLE_ARN, "TableStatus": "ACTIVE",
        "KeySchema": key("pk", "sk"),
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in
                                 (("pk", "S"), ("sk", "N"), ("customer", "S"), ("placed", "N"))],
        "BillingModeSummary": {"BillingMode": billing}, "ProvisionedThroughput": throughput,
        "GlobalSecondaryIndexes": [gsi],
        "LocalSecondaryIndexes": [{
            "IndexName": "byPlaced", "Projection": {"ProjectionType": "KEYS_ONLY"},
            "KeySchema": key("pk", "placed"),
        }],
        **extra,
    }  # fmt: skip
    return EngineTable.from_wire(wire)


def source(table: EngineTable | None = None, **fields: Any) -> SourceTable:
    values: dict[str, Any] = {
        "type": RestoreSourceType.BACKUP, "vault": "primary", "table": table or described(),
        "table_arn": TABLE_ARN, "backup_id": "01795746124738-4ec7d60b", "backup_arn": BACKUP_ARN,
        "item_count": 200, "size_bytes": 4096,
    }  # fmt: skip
    return SourceTable(**{**values, **fields})


def restore_model(name: str = "orders-back", **target: Any) -> Restore:
    body = {
        "apiVersion": "tablekeeper.io/v1alpha1", "kind": "Restore",
        "metadata": {"name": name, "namespace": "shop", "uid": str(uuid.uuid4())},
        "spec": {"source": {"backupRef": {"name": "orders-nightly"}},
                 "target": {"tableName": "Orders_Restored", **target}},
    }  # fmt: skip
    return Restore.model_validate(body)


def target(**fields: Any) -> RestoreTarget:
    return RestoreTarget.model_validate({"tableName": "Orders_Restored", **fields})


def engine_table(status: str = "CREATING", items: int = 0, in_progress: bool | None = True,
                 **fields: Any) -> EngineRestore:  # fmt: skip
    return EngineRestore(name="Orders_Restored", arn=f"{TABLE_ARN}_Restored", status=status, item_count=items,
                         in_progress=in_progress, **fields)  # fmt: skip


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


# --- the source -----------------------------------------------------------------------------------


def backup_object(phase: str | None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "orders-nightly"}, "spec": {"vaultRef": {"name": "primary"}},
            "status": {"phase": phase, **status} if phase else {}}  # fmt: skip


def test_an_available_backup_object_is_its_backup_in_its_vault() -> None:
    found = backup_object("Available", backupId="01795746124738-4ec7d60b", backupArn=BACKUP_ARN)
    assert backup_of_object(found, "orders-nightly") == BackupSource("primary", "01795746124738-4ec7d60b",
                                                                     BACKUP_ARN)  # fmt: skip


@pytest.mark.parametrize("phase", [None, "Pending", "Creating"])
def test_a_backup_still_being_made_is_waited_for(phase: str | None) -> None:
    with pytest.raises(SourceNotReady, match=r"Backup orders-nightly is .*, not Available"):
        backup_of_object(backup_object(phase), "orders-nightly")


def test_a_failed_or_missing_backup_is_refused_with_the_reason() -> None:
    degraded = {"type": "Degraded", "status": "True", "reason": "BackupFailed", "message": "disk full"}
    with pytest.raises(SourceRefused, match=r"^Backup orders-nightly failed: disk full$"):
        backup_of_object(backup_object("Failed", conditions=[degraded]), "orders-nightly")
    with pytest.raises(SourceRefused, match=r"^Backup orders-nightly does not exist$"):
        backup_of_object(None, "orders-nightly")
    deleting = {**backup_object("Available"), "metadata": {"deletionTimestamp": "2026-03-01T12:00:00Z"}}
    with pytest.raises(SourceRefused, match="being deleted"):
        backup_of_object(deleting, "orders-nightly")


def test_a_backup_arn_names_its_backup_id() -> None:
    assert backup_id_of_arn(BACKUP_ARN) == "01795746124738-4ec7d60b"
    with pytest.raises(SourceRefused, match="names no backup"):
        backup_id_of_arn(TABLE_ARN)


def test_an_engine_table_is_this_restore_only_with_a_restore_summary_naming_this_source() -> None:
    of_backup = source()
    assert of_backup.made(engine_table(source_backup_arn=BACKUP_ARN, source_table_arn=TABLE_ARN))
    assert not of_backup.made(engine_table(source_backup_arn=f"{TABLE_ARN}/backup/01795746124739-00000000"))
    assert not of_backup.made(engine_table("ACTIVE", in_progress=None))  # created, not restored
    point = source(type=RestoreSourceType.POINT_IN_TIME, backup_id=None, backup_arn=None)
    assert point.made(engine_table(in_progress=False, source_table_arn=TABLE_ARN))
    assert not point.made(engine_table(source_table_arn=TABLE_ARN, source_backup_arn=BACKUP_ARN))


# --- the target Table -----------------------------------------------------------------------------


def test_the_sources_definition_becomes_a_table_spec() -> None:
    assert spec_of_table(described()) == {
        "keySchema": {"partitionKey": {"name": "pk", "type": "S"}, "sortKey": {"name": "sk", "type": "N"}},
        "billingMode": "PROVISIONED",
        "provisionedThroughput": {"readCapacityUnits": 5, "writeCapacityUnits": 3},
        "globalSecondaryIndexes": [{
            "indexName": "byCustomer", "keySchema": {"partitionKey": {"name": "customer", "type": "S"}},
            "projection": {"projectionType": "INCLUDE", "nonKeyAttributes": ["total"]},
            "provisionedThroughput": {"readCapacityUnits": 2, "writeCapacityUnits": 1},
        }],
        "localSecondaryIndexes": [{
            "indexName": "byPlaced", "sortKey": {"name": "placed", "type": "N"},
            "projection": {"projectionType": "KEYS_ONLY"},
        }],
    }  # fmt: skip


def test_without_overrides_the_target_is_the_source_on_the_sources_vault_and_nothing_more() -> None:
    spec = target_spec(source(), target())
    assert spec.table_name == "Orders_Restored" and spec.backup_vault_ref is not None
    assert spec.backup_vault_ref.name == "primary"
    assert spec.billing_mode.value == "PROVISIONED" and spec.provisioned_throughput is not None
    assert [g.index_name for g in spec.global_secondary_indexes or ()] == ["byCustomer"]
    # DynamoDB carries none of these over to a restored table.
    assert (spec.stream, spec.ttl, spec.tags, spec.deletion_protection) == (None, None, None, False)


def test_on_demand_drops_the_sources_capacity_and_an_empty_index_override_drops_the_indexes() -> None:
    overrides = target(billingModeOverride="PAY_PER_REQUEST", globalSecondaryIndexOverride=[],
                       localSecondaryIndexOverride=[])  # fmt: skip
    spec = target_spec(source(), overrides)
    assert spec.billing_mode.value == "PAY_PER_REQUEST" and spec.provisioned_throughput is None
    assert spec.global_secondary_indexes is None and spec.local_secondary_indexes is None


def test_an_on_demand_sources_indexes_lose_their_capacity_too() -> None:
    spec = target_spec(source(), target(billingModeOverride="PAY_PER_REQUEST"))
    assert [g.provisioned_throughput for g in spec.global_secondary_indexes or ()] == [None]


def test_overrides_replace_the_capacity_and_the_indexes_whole() -> None:
    gsi = {"indexName": "byStatus", "keySchema": {"partitionKey": {"name": "status", "type": "S"}},
           "provisionedThroughput": {"readCapacityUnits": 7, "writeCapacityUnits": 7}}  # fmt: skip
    spec = target_spec(source(), target(
        provisionedThroughputOverride={"readCapacityUnits": 50, "writeCapacityUnits": 20},
        globalSecondaryIndexOverride=[gsi]))  # fmt: skip
    assert spec.provisioned_throughput is not None and spec.provisioned_throughput.read_capacity_units == 50
    assert [g.index_name for g in spec.global_secondary_indexes or ()] == ["byStatus"]
    assert [i.index_name for i in spec.local_secondary_indexes or ()] == ["byPlaced"]  # not overridden


def test_provisioned_capacity_for_an_on_demand_source_needs_its_indexes_capacity_too() -> None:
    on_demand = source(described("PAY_PER_REQUEST"))
    invalid = r"^the restored table Orders_Restored would be invalid: every global secondary index needs"
    with pytest.raises(SourceRefused, match=invalid):
        target_spec(on_demand, target(billingModeOverride="PROVISIONED",
                                      provisionedThroughputOverride={"readCapacityUnits": 1,
                                                                     "writeCapacityUnits": 1}))  # fmt: skip
    with pytest.raises(SourceRefused, match="provisionedThroughput is required with billingMode PROVISIONED"):
        target_spec(on_demand, target(billingModeOverride="PROVISIONED", globalSecondaryIndexOverride=[]))


def test_the_volume_is_twice_the_sources_bytes_and_at_least_a_gibibyte() -> None:
    assert volume_size(None) == volume_size(4096) == "1Gi"
    assert volume_size(3 * 2**30 + 1) == "7Gi"


def test_the_target_table_is_named_for_its_table_marked_with_the_restore_and_owned_by_nobody() -> None:
    body = target_table(restore_model(), source())
    metadata = body["metadata"]
    assert metadata["name"] == naming.object_name("Orders_Restored") != "Orders_Restored"
    assert naming.is_dns_label(metadata["name"]) and metadata["namespace"] == "shop"
    assert metadata["annotations"] == {naming.RESTORE_ANNOTATION: "orders-back"}
    assert metadata["labels"][naming.RESTORE_LABEL] == "orders-back"
    assert "ownerReferences" not in metadata  # deleting the Restore keeps the table
    assert body["spec"]["tableName"] == "Orders_Restored"
    assert made_by(body, "orders-back") and not made_by(body, "another")


def test_the_target_table_validates_against_the_table_crd() -> None:
    schema = closed(root_schema(crd_on_disk(TABLE)))
    overridden = restore_model(billingModeOverride="PAY_PER_REQUEST", globalSecondaryIndexOverride=[])
    for restore in (restore_model(), overridden):
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(
            target_table(restore, source()))]  # fmt: skip
        assert errors == []


def test_an_object_name_keeps_a_dns_label_and_hashes_anything_else_apart() -> None:
    assert naming.object_name("orders-copy") == "orders-copy"
    upper, lower = naming.object_name("Orders"), naming.object_name("orders_")
    assert upper.startswith("orders-") and lower.startswith("orders-") and upper != lower
    long = naming.object_name("A" * 255)
    assert naming.is_dns_label(long) and naming.is_dns_label(naming.object_name("___"))


def test_the_overrides_go_to_the_engine_in_dynamodbs_members() -> None:
    overrides = restore_overrides(target(
        billingModeOverride="PROVISIONED", provisionedThroughputOverride={"readCapacityUnits": 4,
                                                                          "writeCapacityUnits": 2},
        globalSecondaryIndexOverride=[], sseSpecificationOverride={"enabled": True, "sseType": "KMS"},
        localSecondaryIndexOverride=[{"indexName": "byTotal", "sortKey": {"name": "total", "type": "N"}}],
    ), described())  # fmt: skip
    assert overrides == {
        "BillingModeOverride": "PROVISIONED",
        "ProvisionedThroughputOverride": {"ReadCapacityUnits": 4, "WriteCapacityUnits": 2},
        "GlobalSecondaryIndexOverride": [],
        "LocalSecondaryIndexOverride": [{
            "IndexName": "byTotal", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": key("pk", "total"),
        }],
        "SSESpecificationOverride": {"Enabled": True, "SSEType": "KMS"},
    }  # fmt: skip
    assert restore_overrides(target(), described()) == {}


# --- progress and status --------------------------------------------------------------------------


def test_progress_is_the_items_loaded_against_the_backups_and_100_only_once_restored() -> None:
    assert progress(engine_table(items=50), 200) == 25
    assert progress(engine_table(items=200), 200) == 99  # loaded, not yet ACTIVE
    assert progress(engine_table(items=50), None) == 0  # a point in time: no count ahead
    assert progress(engine_table("ACTIVE", items=180, in_progress=False), 200) == 100


def test_a_restore_goes_pending_restoring_completed_with_an_event_each_and_completion_stamped_once() -> None:
    waiting, _ = restore_status_after(RestoreOutcome.TARGET_NOT_READY, "waiting: engine", {}, 1, T0)
    assert waiting["phase"] == "Pending" and conditions(waiting)["Progressing"] == ("True", "TargetNotReady")
    started = {"startedAt": "2026-03-01T12:00:00Z", "itemsRestored": 0, "progress": 0,
               "source": source().chosen()}  # fmt: skip
    restoring, changes = restore_status_after(RestoreOutcome.RESTORING, "restoring", waiting, 1, T0, started)
    assert restoring["phase"] == "Restoring" and "completedAt" not in restoring
    assert ("Progressing", "Normal") in {(t.type, t.event_type) for t in changes}
    later = T0 + timedelta(minutes=3)
    counts = {"progress": 100, "itemsRestored": 200}
    done, changes = restore_status_after(RestoreOutcome.COMPLETED, "restored", restoring, 1, later, counts)
    assert (done["phase"], done["completedAt"]) == ("Completed", "2026-03-01T12:03:00Z")
    assert conditions(done)["Ready"] == ("True", "RestoreCompleted")
    assert ("Ready", "Normal") in {(t.type, t.event_type) for t in changes}
    assert duration({**restoring, **done}) == 180.0 and is_final(done)
    again, _ = restore_status_after(RestoreOutcome.COMPLETED, "restored", {**restoring, **done}, 1,
                                    later + timedelta(hours=1))  # fmt: skip
    assert "completedAt" not in again  # the first time it was seen done stays
    RestoreStatus.model_validate({**restoring, **done})


@pytest.mark.parametrize("outcome", [RestoreOutcome.SOURCE_REFUSED, RestoreOutcome.TARGET_EXISTS,
                                     RestoreOutcome.ENGINE_REFUSED, RestoreOutcome.FAILED])  # fmt: skip
def test_a_refused_or_failed_restore_is_final_degraded_and_warned(outcome: RestoreOutcome) -> None:
    failed, changes = restore_status_after(outcome, "no", {}, 1, T0)
    assert failed["phase"] == "Failed" and is_final(failed)
    assert failed["completedAt"] == "2026-03-01T12:00:00Z"
    assert conditions(failed)["Degraded"] == ("True", outcome.value)
    assert ("Degraded", "Warning") in {(t.type, t.event_type) for t in changes}


def test_latest_is_recorded_as_the_moment_the_engine_chose_and_a_given_time_as_given() -> None:
    chosen = engine_table(restore_time=datetime(2026, 3, 1, 11, 59, 58, 125_000, tzinfo=UTC))
    latest = source(type=RestoreSourceType.POINT_IN_TIME, backup_id=None, backup_arn=None).chosen()
    assert latest == {"type": "PointInTime", "vault": "primary"}
    assert with_restore_time(latest, chosen)["restoreDateTime"] == "2026-03-01T11:59:58.125Z"
    asked = source(type=RestoreSourceType.POINT_IN_TIME, backup_id=None, backup_arn=None,
                   restore_time=datetime(2026, 3, 1, 11, 0, 0, 500_000, tzinfo=UTC)).chosen()  # fmt: skip
    assert with_restore_time(asked, chosen)["restoreDateTime"] == "2026-03-01T11:00:00.500Z"
    of_backup = source().chosen()
    assert "restoreDateTime" not in with_restore_time(of_backup, chosen)
    assert of_backup == {"type": "Backup", "vault": "primary", "backupId": "01795746124738-4ec7d60b",
                         "backupArn": BACKUP_ARN}  # fmt: skip
    RestoreStatus.model_validate({"source": with_restore_time(latest, chosen)})


def test_restore_metrics_count_results_and_bucket_durations() -> None:
    metrics = Metrics()
    metrics.restore_finished("Backup", "Completed", 42.0)
    metrics.restore_finished("Backup", "Failed", None)
    text = metrics.render()
    assert 'tablekeeper_operator_restores_total{source="Backup",result="Completed"} 1' in text
    assert 'tablekeeper_operator_restores_total{source="Backup",result="Failed"} 1' in text
    assert 'tablekeeper_operator_restore_duration_seconds_bucket{source="Backup",le="15"} 0' in text
    assert 'tablekeeper_operator_restore_duration_seconds_bucket{source="Backup",le="60"} 1' in text
    assert 'tablekeeper_operator_restore_duration_seconds_bucket{source="Backup",le="+Inf"} 1' in text
    assert 'tablekeeper_operator_restore_duration_seconds_count{source="Backup"} 1' in text


def test_a_finished_restore_is_counted_once_with_its_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(kopf, "event", lambda *_, reason, **__: events.append(reason))  # no operator here
    metrics = Metrics()
    body = kopf.Body({"metadata": {"name": "orders-back", "namespace": "shop"}, "status": {}})
    run = RestorePass(body, kopf.Patch(), metrics, T0 + timedelta(seconds=90))
    run.source_type = "PointInTime"
    run.report(RestoreOutcome.RESTORING, "restoring", {"startedAt": "2026-03-01T12:00:00Z"})
    run.report(RestoreOutcome.COMPLETED, "restored")
    run.report(RestoreOutcome.COMPLETED, "restored")  # a second look at a finished restore
    text = metrics.render()
    assert 'tablekeeper_operator_restores_total{source="PointInTime",result="Completed"} 1' in text
    assert 'tablekeeper_operator_restore_duration_seconds_sum{source="PointInTime"} 90' in text
    assert events.count("RestoreCompleted") == 1
