"""The BackupVault controller: the operator probes the store with the vault's key, and says precisely
why a vault does not work; a Table naming a vault waits for it.

End to end against the fake Kubernetes API (see conftest.py); the decisions themselves without one.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.controllers.tables import Outcome, status_after
from tablekeeper.controllers.vaults import (
    VaultCheckFailed,
    VaultOutcome,
    parse_vault_key,
    secret_value,
    store_outcome,
    vault_problem,
    vault_status_after,
    vault_users,
)
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.errors import IntegrityError, StoreUnavailable, VaultError
from tests.operator.conftest import (
    FolderVault,
    OperatorHarness,
    VersionedEmulator,
    free_port,
    resource_body,
    secret_body,
    table_body,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = bytes(range(32))

kmock_harness = [pytest.mark.asyncio, pytest.mark.timeout(60), pytest.mark.kmock(cls=VersionedEmulator)]


def degraded(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Degraded")


# --- the key, as the engine reads its key file ----------------------------------------------------


def test_a_key_is_one_line_of_base64_of_32_bytes_comments_allowed() -> None:
    raw = b"# made with openssl rand -base64 32\n" + base64.b64encode(KEY) + b"\n"
    assert parse_vault_key(raw, "read key").key_id == VaultKey.from_secret(KEY).key_id


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (base64.b64encode(KEY[:16]), "the key is 16 bytes, not 32"),
        (b"not base64 at all!", "not valid base64"),
        (b"# only a comment\n", "no key"),
        (base64.b64encode(KEY) + b"\n" + base64.b64encode(KEY), "more than one key line"),
        (b"\xff\xfe", "not text"),
    ],
)
def test_anything_else_is_an_invalid_key_saying_why(raw: bytes, cause: str) -> None:
    with pytest.raises(VaultCheckFailed) as failed:
        parse_vault_key(raw, "read the vault key")
    assert failed.value.outcome is VaultOutcome.KEY_INVALID
    assert failed.value.message.startswith(f"read the vault key: {cause}")


def test_a_secret_value_is_decoded_and_a_missing_or_garbled_one_is_none() -> None:
    secret = {"data": {"a": base64.b64encode(b"x").decode(), "b": "%%%"}}
    assert (secret_value(secret, "a"), secret_value(secret, "b"), secret_value(secret, "c")) == (
        b"x",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (StoreUnavailable("put s3://b/x: access denied (AccessDenied (403))"), VaultOutcome.ACCESS_DENIED),
        (StoreUnavailable("put s3://b/x: the secret access key does not match the access key id "
                          "(SignatureDoesNotMatch (403))"), VaultOutcome.ACCESS_DENIED),
        (StoreUnavailable("put s3://b/x: could not connect to http://127.0.0.1:9 after 2 attempts"),
         VaultOutcome.STORE_UNREACHABLE),
        (IntegrityError("probe s3://b: the object read back differs"), VaultOutcome.STORE_FAILED),
        (VaultError("put file:///v/x: permission denied"), VaultOutcome.STORE_FAILED),
    ],
)  # fmt: skip
def test_store_errors_name_their_reason(error: VaultError, outcome: VaultOutcome) -> None:
    assert store_outcome(error) is outcome


# --- status and readiness (pure) ------------------------------------------------------------------


def test_a_working_vault_is_ready_with_its_key_id() -> None:
    status, changes = vault_status_after(VaultOutcome.READY, "probed", {}, 3, T0, key_id="abc")
    assert (status["phase"], status["ready"], status["keyId"], status["message"]) == (
        "Ready",
        True,
        "abc",
        None,
    )
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "Progressing": "False", "Degraded": "False"}  # fmt: skip
    assert next((t.type, t.event_type) for t in changes) == ("Ready", "Normal")


def test_a_vault_that_stops_working_is_one_warning_and_failed() -> None:
    ready, _ = vault_status_after(VaultOutcome.READY, "probed", {}, 1, T0)
    status, changes = vault_status_after(VaultOutcome.STORE_UNREACHABLE, "no answer", ready, 1, T0)
    assert (status["phase"], status["ready"], status["message"]) == ("Failed", False, "no answer")
    assert degraded(status)["reason"] == "StoreUnreachable"
    assert {(t.type, t.event_type) for t in changes} == {("Ready", "Warning"), ("Degraded", "Warning")}
    _, changes = vault_status_after(VaultOutcome.STORE_UNREACHABLE, "no answer", status, 1, T0)
    assert changes == ()


def vault_object(status: str, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    condition = {"type": "Ready", "status": status, "reason": "X", "message": "why",
                 "lastTransitionTime": "2026-03-01T12:00:00Z"}  # fmt: skip
    return {"metadata": {"generation": generation},
            "status": {"observedGeneration": observed, "conditions": [condition]}}  # fmt: skip


def test_a_vault_is_usable_only_when_ready_for_its_current_spec() -> None:
    assert vault_problem(vault_object("True"), "primary") is None
    assert vault_problem(None, "primary") == "BackupVault primary does not exist"
    assert vault_problem({"metadata": {}}, "primary") == "BackupVault primary has not been checked yet"
    assert vault_problem(vault_object("False"), "primary") == "BackupVault primary is not ready: why"
    assert "changed" in str(vault_problem(vault_object("True", generation=2), "primary"))


def test_a_table_waiting_for_its_vault_keeps_serving_if_it_was() -> None:
    active, _ = status_after(Outcome.ACTIVE, "ok", {}, 1, T0)
    waiting, _ = status_after(Outcome.VAULT_NOT_READY, "waiting for BackupVault primary", active, 2, T0)
    assert waiting["phase"] == "Active"
    by_type = {c["type"]: (c["status"], c["reason"]) for c in waiting["conditions"]}
    assert by_type["Ready"] == ("True", "Active") and by_type["Progressing"] == ("True", "VaultNotReady")
    fresh, _ = status_after(Outcome.VAULT_NOT_READY, "waiting", {}, 1, T0)
    assert fresh["phase"] == "Creating" and fresh["conditions"][0]["status"] == "False"


def user(name: str, spec: dict[str, Any], leaving: bool = False, phase: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if leaving:
        metadata["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    return {"metadata": metadata, "spec": spec, "status": {"phase": phase} if phase else {}}


def test_a_vault_is_needed_by_what_names_it_until_it_finishes_or_leaves() -> None:
    primary, other = {"name": "primary"}, {"name": "cold"}
    objects = {
        "Table": [user("orders", {"backupVaultRef": primary}),
                  user("gone", {"backupVaultRef": primary}, leaving=True), user("plain", {})],
        "PitrConfig": [user("orders", {"vaultRef": primary}), user("elsewhere", {"vaultRef": other})],
        "BackupPlan": [user("nightly", {"rules": [{"targetVaultRef": other}, {"targetVaultRef": primary}]})],
        # A Backup being deleted may still delete its backup through the vault; a retained one not.
        "Backup": [user("b1", {"vaultRef": primary}, leaving=True), user("kept", {"vaultRef": primary,
                                                                       "deletionPolicy": "Retain"})],
        "Restore": [user("r1", {"source": {"pointInTime": {"vaultRef": primary}}}),
                    user("done", {"source": {"vaultBackup": {"vaultRef": primary}}}, phase="Completed")],
    }  # fmt: skip
    assert vault_users("primary", objects) == [
        "Table orders", "PitrConfig orders", "BackupPlan nightly", "Backup b1", "Restore r1",
    ]
    assert vault_users("cold", objects) == ["PitrConfig elsewhere", "BackupPlan nightly"]
    assert vault_users("unused", objects) == []


# --- end to end -----------------------------------------------------------------------------------


async def ready_vault(harness: OperatorHarness, tmp_path: Path) -> tuple[FolderVault, dict[str, Any]]:
    """The operator running, and a folder vault with its key Secret: Ready (reason VaultReady)."""
    vault = FolderVault(tmp_path)
    harness.start_operator()
    await harness.operator_watching()
    await harness.create("secrets", vault.key_secret_body())
    await harness.create("backupvaults", vault.body())
    status = await harness.wait_for_status(
        "backupvaults", "primary", phase="Ready", Ready=("True", "VaultReady")
    )
    return vault, status


class TestEndToEnd:
    pytestmark = kmock_harness

    async def test_a_folder_vault_with_its_key_is_ready(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault, status = await ready_vault(harness, tmp_path)
        assert status["ready"] is True
        assert status["keyId"] == VaultKey.from_secret(vault.secret).key_id
        assert vault.folder.is_dir()  # the probe wrote there, and cleaned up after itself
        assert [p for p in vault.folder.rglob("*") if p.is_file()] == []
        assert await harness.posted("Normal", "VaultReady")

    async def test_a_vault_whose_key_secret_is_missing_says_so_then_recovers(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = FolderVault(tmp_path)
        harness.start_operator()
        await harness.operator_watching()
        await harness.create("backupvaults", vault.body())
        status = await harness.wait_for_status("backupvaults", "primary", phase="Failed",
                                               Degraded=("True", "SecretMissing"))  # fmt: skip
        assert status["message"] == "read key Secret tk-test/vault-key: not found"
        assert await harness.posted("Warning", "SecretMissing")
        await harness.create("secrets", vault.key_secret_body())  # the handler checks again shortly
        await harness.wait_for_status("backupvaults", "primary", phase="Ready", Degraded="False")

    async def test_a_short_key_is_invalid(self, harness: OperatorHarness, tmp_path: Path) -> None:
        vault = FolderVault(tmp_path)
        harness.start_operator()
        await harness.operator_watching()
        await harness.create("secrets", secret_body("vault-key", {"vault.key": base64.b64encode(KEY[:16])}))
        await harness.create("backupvaults", vault.body())
        status = await harness.wait_for_status("backupvaults", "primary", Degraded=("True", "KeyInvalid"))
        assert status["message"].startswith(
            "read the vault key 'vault.key' of Secret tk-test/vault-key: the key is 16 bytes, not 32"
        )
        assert not vault.folder.exists()  # nothing was written with a bad key

    async def test_an_unreachable_s3_endpoint_is_store_unreachable(self, harness: OperatorHarness) -> None:
        closed = free_port()
        harness.start_operator()
        await harness.operator_watching()
        await harness.create("secrets", secret_body("vault-key", {"vault.key": base64.b64encode(KEY)}))
        await harness.create("secrets", secret_body("s3", {"AWS_ACCESS_KEY_ID": b"AKID",
                                                           "AWS_SECRET_ACCESS_KEY": b"secret"}))  # fmt: skip
        s3 = {"endpoint": f"http://127.0.0.1:{closed}", "region": "us-east-1"}
        spec = {"url": "s3://backups/tk", "s3": s3, "credentialsSecretRef": {"name": "s3"},
                "keySecretRef": {"name": "vault-key"}}  # fmt: skip
        await harness.create("backupvaults", resource_body("BackupVault", "remote", spec))
        status = await harness.wait_for_status(
            "backupvaults", "remote", Degraded=("True", "StoreUnreachable")
        )
        assert f"could not connect to http://127.0.0.1:{closed}" in status["message"]
        assert status["phase"] == "Failed" and status["ready"] is False

    async def test_a_table_waits_for_the_vault_it_names(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        vault = FolderVault(tmp_path)
        harness.start_operator("orders")
        await harness.operator_watching()
        await harness.create("tables", table_body("orders", "tk-test", backupVaultRef={"name": "primary"}))
        status = await harness.wait_for_status("tables", "orders", Progressing=("True", "VaultNotReady"))
        assert status["phase"] == "Creating"
        progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
        assert progressing["message"] == "waiting for BackupVault primary: BackupVault primary does not exist"
        assert await harness.get("statefulsets", "orders-engine") is None  # nothing built before the vault
        await harness.create("secrets", vault.key_secret_body())
        await harness.create("backupvaults", vault.body())
        statefulset = await harness.wait_for(
            "the StatefulSet", lambda: harness.get("statefulsets", "orders-engine")
        )
        (container,) = statefulset["spec"]["template"]["spec"]["containers"]
        assert container["args"][container["args"].index("--vault") + 1] == vault.url


    async def test_a_vault_in_use_is_kept_until_its_users_are_gone(
        self, harness: OperatorHarness, tmp_path: Path
    ) -> None:
        await ready_vault(harness, tmp_path)
        pitr = {"tableRef": {"name": "orders"}, "vaultRef": {"name": "primary"}, "enabled": True}
        await harness.create("pitrconfigs", resource_body("PitrConfig", "orders", pitr))
        await harness.delete("backupvaults", "primary")

        async def warned() -> bool:
            return ("Warning", "InUse") in {(e["type"], e["reason"]) for e in harness.events()}

        await harness.wait_for("the InUse warning", warned)
        message = next(e["message"] for e in harness.events() if e["reason"] == "InUse")
        assert message == "BackupVault primary is still used by PitrConfig orders: it goes once they do"
        assert await harness.get("backupvaults", "primary") is not None
        await harness.delete("pitrconfigs", "orders")
        await harness.gone("pitrconfigs", "orders")
        await harness.gone("backupvaults", "primary")

def test_the_check_interval_defaults_to_ten_status_intervals() -> None:
    from tablekeeper.controllers.operator import OperatorConfig

    assert OperatorConfig().vault_check_interval == 300.0
    assert OperatorConfig(status_interval=1.0, vault_interval=5.0).vault_check_interval == 5.0
    assert OperatorConfig(status_interval=2.0).vault_check_interval == 20.0


def test_the_vault_interval_is_a_flag_of_the_operator_command() -> None:
    from tablekeeper.cli import build_parser, operator_config

    given = operator_config(build_parser().parse_args(["operator", "--vault-interval", "45"]))
    assert given.vault_check_interval == 45.0
    default = operator_config(build_parser().parse_args(["operator", "--status-interval", "3"]))
    assert default.vault_check_interval == 30.0
