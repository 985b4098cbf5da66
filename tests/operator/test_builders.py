"""The engine's Kubernetes objects: valid against the official schemas, restricted, deterministic."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tablekeeper.controllers import builders
from tablekeeper.controllers.builders import Credentials, EngineNames, EngineSettings
from tablekeeper.controllers.endpoints import MappedEndpoints, ServiceEndpoints, resolver_from_environment
from tablekeeper.resources.table import Table
from tablekeeper.resources.vault import BackupVaultSpec
from tests.operator.conftest import KUBERNETES_VERSION, ROOT, table_model

SETTINGS = EngineSettings(image="registry.example/tablekeeper:test")
KEYS = Credentials("TKTESTKEY00000000001", "s3cr3t/with+symbols")


def orders(**spec: Any) -> Table:
    return table_model("orders", "shop", **spec)


def all_objects(table: Table, vault: BackupVaultSpec | None = None) -> list[dict[str, Any]]:
    return [
        builders.credentials_secret(table, KEYS, SETTINGS),
        builders.client_service(table, SETTINGS),
        builders.headless_service(table, SETTINGS),
        builders.engine_statefulset(table, SETTINGS, vault),
    ]


def pod_spec(table: Table) -> dict[str, Any]:
    return builders.engine_statefulset(table, SETTINGS)["spec"]["template"]["spec"]


FULL_SPEC: dict[str, Any] = {
    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": 2, "memory": "2Gi"}},
    "storage": {"size": "20Gi", "storageClassName": "fast-ssd"},
    "durability": "process-crash",
}


@pytest.mark.parametrize("spec", [{}, FULL_SPEC], ids=["defaults", "resources-storage-durability"])
def test_every_built_object_is_valid_for_kubernetes(spec: dict[str, Any]) -> None:
    for obj in all_objects(orders(**spec)):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_children_have_deterministic_names() -> None:
    names = [obj["metadata"]["name"] for obj in all_objects(orders())]
    assert names == ["orders-credentials", "orders-engine", "orders-engine-headless", "orders-engine"]


def test_children_carry_the_labels_and_their_table_as_controller() -> None:
    table = orders()
    for obj in all_objects(table):
        assert obj["metadata"]["namespace"] == "shop"
        assert obj["metadata"]["labels"] == {
            "app.kubernetes.io/name": "tablekeeper-engine",
            "app.kubernetes.io/instance": "orders",
            "app.kubernetes.io/managed-by": "tablekeeper",
            "app.kubernetes.io/component": "engine",
        }
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "tablekeeper.io/v1alpha1", "kind": "Table", "name": "orders",
            "uid": table.metadata.uid, "controller": True, "blockOwnerDeletion": True,
        }  # fmt: skip


def test_a_table_without_a_uid_has_no_children_yet() -> None:
    table = orders().model_copy(update={"metadata": orders().metadata.model_copy(update={"uid": None})})
    with pytest.raises(ValueError, match=r"metadata\.uid is not set"):
        builders.client_service(table, SETTINGS)


def test_a_long_or_odd_table_name_gets_short_hashed_child_names() -> None:
    long_name = "a" * 60
    names = EngineNames.of(long_name)
    assert len(names.headless_service) <= 63 and len(names.statefulset) <= 52
    assert names.base != EngineNames.of("a" * 61).base
    assert EngineNames.of("9lives").base.startswith("t-")  # a Service name starts with a letter
    for obj in all_objects(table_model(long_name, "shop")):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_pod_runs_restricted() -> None:
    pod = pod_spec(orders())
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_the_pod_uses_only_volume_types_the_restricted_profile_allows() -> None:
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
               "projected", "secret"}  # fmt: skip
    for volume in pod_spec(orders())["volumes"]:
        assert set(volume) - {"name"} <= allowed


def test_the_engine_runs_with_sigv4_the_mounted_credentials_and_the_spec_durability() -> None:
    (container,) = pod_spec(orders(durability="process-crash"))["containers"]
    assert container["command"] + container["args"] == [
        "tablekeeper", "engine", "--data", "/data", "--host", "0.0.0.0", "--port", "8000",
        "--auth", "sigv4", "--credentials", "/etc/tablekeeper/credentials/credentials",
        "--durability", "process-crash",
    ]  # fmt: skip
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/data"]["name"] == "data"
    assert mounts["/tmp"]["name"] == "tmp"
    assert mounts["/etc/tablekeeper/credentials"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod_spec(orders())["volumes"]}
    assert volumes["tmp"]["emptyDir"]
    assert volumes["credentials"]["secret"]["secretName"] == "orders-credentials"


def test_probes_ask_the_engine_health_line() -> None:
    (container,) = pod_spec(orders())["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "dynamodb", "scheme": "HTTP"}
    assert container["ports"] == [{"name": "dynamodb", "containerPort": 8000, "protocol": "TCP"}]


def test_resources_and_storage_come_from_the_spec() -> None:
    statefulset = builders.engine_statefulset(orders(**FULL_SPEC), SETTINGS)
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == FULL_SPEC["resources"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}},
                             "storageClassName": "fast-ssd"}  # fmt: skip


def test_the_statefulset_is_one_replica_behind_the_headless_service() -> None:
    spec = builders.engine_statefulset(orders(), SETTINGS)["spec"]
    assert spec["replicas"] == 1
    assert spec["serviceName"] == "orders-engine-headless"
    selector = {"app.kubernetes.io/name": "tablekeeper-engine", "app.kubernetes.io/instance": "orders"}
    assert spec["selector"]["matchLabels"] == selector
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()


def test_the_volume_is_kept_on_delete_unless_the_table_is_annotated() -> None:
    kept = builders.engine_statefulset(orders(), SETTINGS)["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert kept == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    annotated = table_model("orders", "shop", annotations={"tablekeeper.io/delete-volume": "true"})
    policy = builders.engine_statefulset(annotated, SETTINGS)["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy["whenDeleted"] == "Delete"


def test_the_mutable_patch_leaves_what_the_api_server_refuses_to_change() -> None:
    statefulset = builders.engine_statefulset(orders(), SETTINGS)
    paths = {op["path"] for op in builders.mutable_statefulset_patch(statefulset)}
    assert "/spec/template" in paths
    assert not {"/spec/selector", "/spec/serviceName", "/spec/volumeClaimTemplates"} & paths


def test_the_headless_service_publishes_the_pod_before_it_is_ready() -> None:
    spec = builders.headless_service(orders(), SETTINGS)["spec"]
    assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
    client = builders.client_service(orders(), SETTINGS)["spec"]
    port = {"name": "dynamodb", "port": 8000, "targetPort": "dynamodb", "protocol": "TCP"}
    assert client["ports"] == [port]


def test_the_secret_holds_the_credentials_file_the_client_keys_and_the_endpoint() -> None:
    secret = builders.credentials_secret(orders(), KEYS, SETTINGS)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "credentials": "TKTESTKEY00000000001:s3cr3t/with+symbols\n",
        "AWS_ACCESS_KEY_ID": "TKTESTKEY00000000001",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t/with+symbols",
        "endpoint": "http://orders-engine.shop.svc:8000",
    }
    assert builders.credentials_from_secret(secret) == KEYS


def test_a_secret_without_keys_reads_as_an_error() -> None:
    with pytest.raises(ValueError, match="read credentials from Secret"):
        builders.credentials_from_secret({"metadata": {"name": "x"}, "data": {}})


def test_credentials_with_a_colon_in_the_key_id_are_refused() -> None:
    with pytest.raises(ValueError, match="access key id"):
        Credentials("AK:ID", "secret")


def test_the_resolver_defaults_to_the_client_service() -> None:
    assert resolver_from_environment({})("shop", "orders") == "http://orders-engine.shop.svc:8000"
    assert ServiceEndpoints(9000)("shop", "orders") == "http://orders-engine.shop.svc:9000"


def test_the_resolver_takes_mapped_endpoints_from_the_environment() -> None:
    resolver = resolver_from_environment(
        {"TABLEKEEPER_ENGINE_ENDPOINTS": '{"shop/orders": "http://127.0.0.1:18000/"}'}
    )
    assert isinstance(resolver, MappedEndpoints)
    assert resolver("shop", "orders") == "http://127.0.0.1:18000"
    assert resolver("shop", "other") == "http://other-engine.shop.svc:8000"


@pytest.mark.parametrize("value", ["not json", '["a"]', '{"orders": "http://x"}'])
def test_a_malformed_endpoint_mapping_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="TABLEKEEPER_ENGINE_ENDPOINTS"):
        resolver_from_environment({"TABLEKEEPER_ENGINE_ENDPOINTS": value})


def test_the_example_table_builds_valid_objects() -> None:
    example = yaml.safe_load((ROOT / "examples" / "table.yaml").read_text())
    example["metadata"]["uid"] = "0b6f4a52-1d1c-4c34-9f57-0d0f2f0a2b11"  # what the API server adds
    vault = yaml.safe_load((ROOT / "examples" / "backupvault.yaml").read_text())
    assert example["spec"]["backupVaultRef"]["name"] == vault["metadata"]["name"]
    for obj in all_objects(Table.model_validate(example), BackupVaultSpec.model_validate(vault["spec"])):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# --- a table on a BackupVault ---------------------------------------------------------------------

S3_VAULT = BackupVaultSpec.model_validate({
    "url": "s3://shop-backups/tablekeeper",
    "s3": {"endpoint": "http://minio.storage.svc:9000", "region": "eu-west-1"},
    "credentialsSecretRef": {"name": "minio-credentials"},
    "keySecretRef": {"name": "vault-key", "key": "vault.key"},
})  # fmt: skip
FOLDER_VAULT = BackupVaultSpec.model_validate({"url": "file:///data/shared-vault",
                                               "keySecretRef": {"name": "vault-key"}})  # fmt: skip


def on_vault(**spec: Any) -> Table:
    return orders(backupVaultRef={"name": "primary"}, **spec)


def vault_pod(vault: BackupVaultSpec) -> dict[str, Any]:
    statefulset = builders.engine_statefulset(on_vault(), SETTINGS, vault)
    return statefulset["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_a_table_on_a_vault_builds_valid_objects() -> None:
    for vault in (S3_VAULT, FOLDER_VAULT):
        for obj in all_objects(on_vault(), vault):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_engine_of_a_table_on_an_s3_vault_gets_its_url_key_endpoint_and_region() -> None:
    (container,) = vault_pod(S3_VAULT)["containers"]
    args = container["args"]
    assert args[args.index("--vault") + 1] == "s3://shop-backups/tablekeeper"
    assert args[args.index("--vault-key-file") + 1] == "/etc/tablekeeper/vault/vault.key"
    assert args[args.index("--vault-endpoint-url") + 1] == "http://minio.storage.svc:9000"
    assert args[args.index("--vault-region") + 1] == "eu-west-1"


def test_the_vault_key_is_mounted_read_only_and_alone() -> None:
    pod = vault_pod(S3_VAULT)
    volume = {v["name"]: v for v in pod["volumes"]}["vault-key"]
    items = [{"key": "vault.key", "path": "vault.key"}]
    assert volume["secret"] == {"secretName": "vault-key", "items": items, "defaultMode": 0o440}
    (container,) = pod["containers"]
    mount = {m["name"]: m for m in container["volumeMounts"]}["vault-key"]
    assert mount == {"name": "vault-key", "mountPath": "/etc/tablekeeper/vault", "readOnly": True}


def test_s3_credentials_come_from_their_secret_by_reference() -> None:
    (container,) = vault_pod(S3_VAULT)["containers"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"] == {"secretKeyRef": {"name": "minio-credentials", "key": name}}
        assert "value" not in env[name]


def test_a_folder_vault_has_no_s3_flags_or_credentials() -> None:
    (container,) = vault_pod(FOLDER_VAULT)["containers"]
    assert container["args"][-4:] == ["--vault", "file:///data/shared-vault", "--vault-key-file",
                                      "/etc/tablekeeper/vault/vault.key"]  # fmt: skip
    assert [e["name"] for e in container["env"]] == ["PYTHONUNBUFFERED"]


def test_a_table_without_a_vault_keeps_the_folder_vault_on_its_volume() -> None:
    pod = pod_spec(orders())
    (container,) = pod["containers"]
    assert "--vault" not in container["args"]
    assert "vault-key" not in {v["name"] for v in pod["volumes"]}
    table = orders()  # a vault given for a Table that names none is not used
    built = builders.engine_statefulset(table, SETTINGS, S3_VAULT)
    assert built == builders.engine_statefulset(table, SETTINGS)


def test_a_table_naming_a_vault_is_not_built_without_it() -> None:
    with pytest.raises(ValueError, match="its BackupVault primary was not given"):
        builders.engine_statefulset(on_vault(), SETTINGS)


def test_naming_a_vault_changes_the_pod_template_so_the_engine_restarts_on_it() -> None:
    before = builders.engine_statefulset(orders(), SETTINGS)
    after = builders.engine_statefulset(on_vault(), SETTINGS, S3_VAULT)
    template = {op["path"]: op["value"] for op in builders.mutable_statefulset_patch(after)}["/spec/template"]
    assert template != before["spec"]["template"]
    assert "--vault" in template["spec"]["containers"][0]["args"]
