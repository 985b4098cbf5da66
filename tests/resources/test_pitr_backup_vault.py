"""PitrConfig, Backup and BackupVault: bounds, defaults and the rules mirrored from the CRD."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tablekeeper.resources import BackupSpec, BackupVaultSpec, DeletionPolicy, PitrConfigSpec

PITR = {"tableRef": {"name": "orders"}, "vaultRef": {"name": "primary"}}
VAULT_KEY = {"keySecretRef": {"name": "vault-key"}}


@pytest.mark.parametrize("days", [0, 36])
def test_recovery_period_outside_1_to_35_days_is_refused(days: int) -> None:
    with pytest.raises(ValidationError) as caught:
        PitrConfigSpec.model_validate({**PITR, "recoveryPeriodInDays": days})
    message = str(caught.value)
    assert "recoveryPeriodInDays" in message
    assert ("greater than or equal to 1" if days == 0 else "less than or equal to 35") in message


@pytest.mark.parametrize("days", [1, 35])
def test_recovery_period_of_1_and_35_days_is_accepted(days: int) -> None:
    assert (
        PitrConfigSpec.model_validate({**PITR, "recoveryPeriodInDays": days}).recovery_period_in_days == days
    )


def test_pitr_is_enabled_for_35_days_by_default() -> None:
    pitr = PitrConfigSpec.model_validate(PITR)
    assert (pitr.enabled, pitr.recovery_period_in_days) == (True, 35)


def test_pitr_needs_a_vault() -> None:
    with pytest.raises(ValidationError, match="vaultRef"):
        PitrConfigSpec.model_validate({"tableRef": {"name": "orders"}})


def test_a_reference_must_be_a_kubernetes_object_name() -> None:
    with pytest.raises(ValidationError, match=r"tableRef\.name"):
        PitrConfigSpec.model_validate({**PITR, "tableRef": {"name": "Orders_Table"}})


def test_backup_is_deleted_with_its_object_unless_retained() -> None:
    backup = BackupSpec.model_validate(PITR)
    assert backup.deletion_policy is DeletionPolicy.DELETE and backup.backup_name is None
    assert (
        BackupSpec.model_validate({**PITR, "deletionPolicy": "Retain"}).deletion_policy
        is DeletionPolicy.RETAIN
    )


def test_backup_refuses_an_unknown_deletion_policy() -> None:
    with pytest.raises(ValidationError, match="'Delete' or 'Retain'"):
        BackupSpec.model_validate({**PITR, "deletionPolicy": "Orphan"})


def vault(**fields: Any) -> BackupVaultSpec:
    return BackupVaultSpec.model_validate({**VAULT_KEY, **fields})


@pytest.mark.parametrize(
    "url", ["file:///var/lib/vault", "s3://shop-backups", "s3://shop-backups/tables/prod"]
)
def test_vault_accepts_folder_and_bucket_urls(url: str) -> None:
    assert vault(url=url).url == url


@pytest.mark.parametrize("url", ["file://relative", "http://host/x", "s3://", "s3://b/x?versionId=1"])
def test_vault_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        vault(url=url)


def test_vault_secret_keys_default_to_the_aws_names_and_vault_key() -> None:
    spec = vault(url="s3://b1b/x", credentialsSecretRef={"name": "creds"})
    assert spec.credentials_secret_ref is not None
    assert spec.credentials_secret_ref.access_key_id_key == "AWS_ACCESS_KEY_ID"
    assert spec.credentials_secret_ref.secret_access_key_key == "AWS_SECRET_ACCESS_KEY"
    assert spec.key_secret_ref.key == "vault.key"


def test_vault_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="keySecretRef"):
        BackupVaultSpec.model_validate({"url": "file:///v"})


def test_s3_settings_on_a_folder_vault_are_refused() -> None:
    with pytest.raises(ValidationError, match="s3 and credentialsSecretRef apply to s3:// URLs only"):
        vault(url="file:///v", s3={"region": "eu-west-1"})


def test_changing_what_a_backup_is_of_is_refused_but_its_deletion_policy_may_change() -> None:
    old = BackupSpec.model_validate(PITR)
    retained = BackupSpec.model_validate({**PITR, "deletionPolicy": "Retain"})
    assert retained.refused_changes(old) == []
    moved = BackupSpec.model_validate({**PITR, "vaultRef": {"name": "other"}, "backupName": "named"})
    assert moved.refused_changes(old) == ["vaultRef is immutable", "backupName is immutable"]


def test_pointing_pitr_at_another_table_is_refused_but_another_vault_is_not() -> None:
    old = PitrConfigSpec.model_validate(PITR)
    assert PitrConfigSpec.model_validate({**PITR, "vaultRef": {"name": "other"}}).refused_changes(old) == []
    other = PitrConfigSpec.model_validate({**PITR, "tableRef": {"name": "carts"}})
    assert other.refused_changes(old) == ["tableRef is immutable"]
