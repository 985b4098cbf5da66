"""The CEL rules in the CRDs (jsonschema ignores them, and no API server runs here).

Each rule the API server enforces is asserted to exist where it belongs,
with its expression and message; the fields every rule reads are checked to
exist; the pydantic validators that mirror the rules are tested per kind.
"""

from __future__ import annotations

import pytest

from tablekeeper.resources.common import ResourceKind
from tablekeeper.resources.kinds import KINDS, kind_named
from tests.resources.support import cel_field_paths, crd_on_disk, root_schema, rules_at, walk

BY_KIND = pytest.mark.parametrize("kind", KINDS, ids=[k.kind for k in KINDS])


def _rules(kind: str, path: str) -> dict[str, str]:
    """The rules at ``path`` of ``kind``'s schema, as {expression: message}."""
    return {r["rule"]: r["message"] for r in rules_at(root_schema(crd_on_disk(kind_named(kind))), path)}


def _every_rule(kind: ResourceKind) -> list[tuple[str, dict, dict[str, str]]]:
    return [
        (path, node, rule)
        for path, node in walk(root_schema(crd_on_disk(kind)))
        for rule in node.get("x-kubernetes-validations", [])
    ]


@BY_KIND
def test_every_rule_has_a_message(kind: ResourceKind) -> None:
    assert all(rule.get("message") for _, _, rule in _every_rule(kind))


@BY_KIND
def test_every_field_a_rule_reads_exists_in_the_schema(kind: ResourceKind) -> None:
    for path, node, rule in _every_rule(kind):
        for steps in cel_field_paths(rule["rule"]):
            here = node
            for step in steps:
                if here is node and path == "" and step == "metadata":
                    break  # rules at the root may read metadata.name
                assert step in here.get("properties", {}), (
                    f"{kind.kind}{path}: {rule['rule']!r} reads {step!r}"
                )
                here = here["properties"][step]


def test_table_key_schema_is_immutable() -> None:
    assert _rules("Table", "spec.keySchema")["self == oldSelf"] == "keySchema is immutable"


def test_table_local_secondary_indexes_are_immutable_and_set_only_at_creation() -> None:
    assert (
        _rules("Table", "spec.localSecondaryIndexes")["self == oldSelf"]
        == "localSecondaryIndexes is immutable"
    )
    assert (
        _rules("Table", "spec")["has(self.localSecondaryIndexes) == has(oldSelf.localSecondaryIndexes)"]
        == "localSecondaryIndexes can only be set when the table is created"
    )


def test_table_name_is_immutable_whether_given_or_taken_from_metadata() -> None:
    effective = "(has(self.spec.tableName) ? self.spec.tableName : self.metadata.name)"
    old = effective.replace("self.", "oldSelf.")
    assert _rules("Table", "")[f"{effective} == {old}"] == "the table name is immutable"
    assert "has(self.spec.tableName) || size(self.metadata.name) >= 3" in _rules("Table", "")


def test_table_storage_class_is_immutable() -> None:
    assert _rules("Table", "spec.storage.storageClassName") == {
        "self == oldSelf": "storageClassName is immutable"
    }


def test_table_provisioned_throughput_goes_with_provisioned_billing() -> None:
    rules = _rules("Table", "spec")
    assert (
        "(has(self.billingMode) && self.billingMode == 'PROVISIONED') == has(self.provisionedThroughput)"
        in rules
    )
    assert any(
        r.startswith("!has(self.globalSecondaryIndexes) || self.globalSecondaryIndexes.all(") for r in rules
    )
    assert "!has(self.localSecondaryIndexes) || has(self.keySchema.sortKey)" in rules


def test_table_limits_mirror_dynamodb() -> None:
    schema = root_schema(crd_on_disk(kind_named("Table")))["properties"]["spec"]["properties"]
    assert schema["globalSecondaryIndexes"]["maxItems"] == 20
    assert schema["localSecondaryIndexes"]["maxItems"] == 5
    assert (schema["tableName"]["minLength"], schema["tableName"]["maxLength"]) == (3, 255)
    assert schema["tableName"]["pattern"] == "^[a-zA-Z0-9_.-]+$"
    assert schema["tags"]["maxProperties"] == 50
    assert schema["globalSecondaryIndexes"]["x-kubernetes-list-map-keys"] == ["indexName"]


def test_projection_include_goes_with_non_key_attributes() -> None:
    rules = _rules("Table", "spec.globalSecondaryIndexes.[].projection")
    assert rules == {
        "(has(self.projectionType) && self.projectionType == 'INCLUDE')"
        " == (has(self.nonKeyAttributes) && size(self.nonKeyAttributes) > 0)":
        "nonKeyAttributes must be given with projectionType INCLUDE, and only then"
    }  # fmt: skip


def test_enabled_stream_needs_a_view_type() -> None:
    assert _rules("Table", "spec.stream") == {
        "(has(self.enabled) && !self.enabled) || has(self.viewType)":
        "viewType is required when the stream is enabled"
    }  # fmt: skip


def test_pitr_table_ref_is_immutable() -> None:
    assert _rules("PitrConfig", "spec.tableRef") == {"self == oldSelf": "tableRef is immutable"}


def test_backup_target_is_immutable_but_its_deletion_policy_is_not() -> None:
    [(rule, message)] = _rules("Backup", "spec").items()
    assert message == "tableRef, vaultRef and backupName are immutable: create another Backup"
    assert "self.tableRef == oldSelf.tableRef" in rule and "self.vaultRef == oldSelf.vaultRef" in rule
    assert "self.backupName == oldSelf.backupName" in rule and "deletionPolicy" not in rule


def test_restore_spec_is_immutable() -> None:
    assert _rules("Restore", "spec") == {
        "self == oldSelf": "a Restore's spec is immutable: create another Restore"
    }


def test_restore_has_exactly_one_source() -> None:
    assert _rules("Restore", "spec.source") == {
        "(has(self.backupRef) ? 1 : 0) + (has(self.vaultBackup) ? 1 : 0)"
        " + (has(self.pointInTime) ? 1 : 0) == 1":
        "source needs exactly one of backupRef, vaultBackup and pointInTime"
    }  # fmt: skip
    assert _rules("Restore", "spec.source.vaultBackup") == {
        "has(self.backupId) != has(self.backupArn)": "vaultBackup needs exactly one of backupId and backupArn"
    }
    point_in_time = _rules("Restore", "spec.source.pointInTime")
    assert point_in_time["has(self.tableName) != has(self.tableArn)"] == (
        "pointInTime needs exactly one of tableName and tableArn"
    )
    assert (
        point_in_time[
            "has(self.restoreDateTime) != (has(self.useLatestRestorableTime) && self.useLatestRestorableTime)"
        ]
        == "pointInTime needs exactly one of restoreDateTime and useLatestRestorableTime: true"
    )


def test_plan_selection_needs_names_or_a_selector() -> None:
    assert _rules("BackupPlan", "spec.selection") == {
        "has(self.tableNames) || has(self.labelSelector)": "selection needs tableNames or a labelSelector"
    }


def test_plan_rules_are_a_list_map_by_name_with_cron_pattern_and_window_minimum() -> None:
    rules = root_schema(crd_on_disk(kind_named("BackupPlan")))["properties"]["spec"]["properties"]["rules"]
    assert rules["x-kubernetes-list-type"] == "map" and rules["x-kubernetes-list-map-keys"] == ["name"]
    fields = rules["items"]["properties"]
    assert fields["schedule"]["pattern"].startswith("^")
    assert (fields["startWindowMinutes"]["minimum"], fields["startWindowMinutes"]["default"]) == (60, 60)
    assert fields["completionWindowMinutes"]["default"] == 10080
    assert fields["timeZone"]["default"] == "UTC"


def test_vault_s3_settings_only_with_an_s3_url() -> None:
    assert _rules("BackupVault", "spec") == {
        "self.url.startsWith('s3://') || (!has(self.s3) && !has(self.credentialsSecretRef))":
        "s3 and credentialsSecretRef apply to s3:// URLs only"
    }  # fmt: skip


def test_pitr_recovery_period_is_1_to_35_days_defaulting_to_35() -> None:
    field = root_schema(crd_on_disk(kind_named("PitrConfig")))["properties"]["spec"]["properties"][
        "recoveryPeriodInDays"
    ]
    assert (field["minimum"], field["maximum"], field["default"]) == (1, 35, 35)


def test_cel_field_paths_leave_out_method_calls() -> None:
    assert cel_field_paths("self.a.b.all(i, i.c) && has(oldSelf.d)") == [["a", "b"], ["d"]]
