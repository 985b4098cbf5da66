"""The kind tests' cluster: a real Kubernetes (kind) with the operator installed by hack/e2e-kind.sh.

Every test marked ``kind`` is skipped, with the reason, unless ``TK_KIND_CLUSTER`` names a kind cluster
whose context (``kind-<name>``) is in the kubeconfig and answers.  Only that context is ever used, never
the current one: a developer's other clusters must not receive test objects.

What hack/e2e-kind.sh sets up, and these tests expect (the names are shared with the script):

* the chart released in ``TK_KIND_OPERATOR_NAMESPACE`` (default tablekeeper-system), watching every
  namespace;
* MinIO (Service ``minio``, port 9000) in ``TK_KIND_NAMESPACE`` (default tablekeeper-e2e), with the
  Secrets ``minio-credentials`` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and ``vault-key`` (vault.key).

A session works in a namespace of its own (``tk-e2e-<random>``) with copies of those Secrets, and its
vault under a prefix of its own in the bucket, so runs on a kept cluster never meet each other's objects.
Engines are reached as an application reaches them, through their client Service; from outside the
cluster that is ``kubectl port-forward``.  The vocabulary (get, create, patch, wait_for_status, gone)
is the kmock harness's (tests/operator/conftest.py), here against the real API server.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import kopf
import pytest
from botocore.config import Config
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tablekeeper.controllers.builders import credentials_from_secret
from tablekeeper.controllers.kube import Kind, Kube
from tablekeeper.resources.common import API_VERSION
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.store import open_store
from tests.conftest import make_client

CLUSTER_ENV: Final = "TK_KIND_CLUSTER"
HOW: Final = "run hack/e2e-kind.sh (needs kind, docker, kubectl, helm)"
STORE_NAMESPACE: Final = os.environ.get("TK_KIND_NAMESPACE", "tablekeeper-e2e")
OPERATOR_NAMESPACE: Final = os.environ.get("TK_KIND_OPERATOR_NAMESPACE", "tablekeeper-system")
OPERATOR_PODS: Final = "app.kubernetes.io/name=tablekeeper,app.kubernetes.io/component=operator"
MINIO_SERVICE: Final = "minio"
MINIO_PORT: Final = 9000
S3_SECRET: Final = "minio-credentials"
KEY_SECRET: Final = "vault-key"
BUCKET: Final = "tablekeeper-e2e"
REGION: Final = "us-east-1"
VAULT: Final = "primary"
WAIT: Final = 240.0
"""Seconds to wait for a state: generous, since a real cluster schedules pods and provisions volumes."""

KINDS: Final = {
    **{plural: Kind(API_VERSION, plural)
       for plural in ("tables", "backupvaults", "backups", "backupplans", "pitrconfigs", "restores")},
    **{plural: Kind("v1", plural) for plural in ("secrets", "services", "pods", "events")},
    "statefulsets": Kind("apps/v1", "statefulsets"),
}  # fmt: skip


# --- is there a cluster? ------------------------------------------------------------------------


def context_of(cluster: str) -> str:
    """The kubeconfig context kind writes for ``cluster``."""
    return f"kind-{cluster}"


def cluster_problem() -> str | None:
    """Why the kind tests cannot run here, or None when TK_KIND_CLUSTER's cluster answers."""
    cluster = os.environ.get(CLUSTER_ENV, "").strip()
    if not cluster:
        return f"{CLUSTER_ENV} is not set"
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH (the tests reach engines through kubectl port-forward)"
    context = context_of(cluster)
    try:
        contexts, _ = k8s_config.list_kube_config_contexts()
    except (k8s_config.ConfigException, OSError) as error:
        return f"no kubeconfig with context {context}: {error}"
    if context not in {c["name"] for c in contexts or ()}:
        return f"the kubeconfig has no context {context}"
    try:
        api = k8s_config.new_client_from_config(context=context, persist_config=False)
        k8s_client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as error:  # any failure here means the same thing: no cluster to test against
        return f"cluster {context} does not answer: {type(error).__name__}: {error}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``kind`` here where no kind cluster answers, saying why (pytest -ra shows it).

    Only this directory's: pytest hands every conftest the whole session's items."""
    here = Path(__file__).parent
    marked = [item for item in items
              if item.get_closest_marker("kind") is not None and item.path.is_relative_to(here)]  # fmt: skip
    if not marked:
        return
    problem = cluster_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"no kind cluster: {problem}; {HOW}")
    for item in marked:
        item.add_marker(skip)


# --- the cluster ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindCluster:
    """The kind cluster's API through the operator's own small client, in this session's namespace."""

    name: str
    kube: Kube
    namespace: str

    @property
    def context(self) -> str:
        return context_of(self.name)

    def kubectl(self, *arguments: str, timeout: float = 120) -> str:
        """Run kubectl against this cluster's context only; its output (fails the test on an error)."""
        command = ["kubectl", "--context", self.context, *arguments]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        return done.stdout

    # --- objects, as dicts ------------------------------------------------------------------------

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.kube.get(KINDS[plural], namespace or self.namespace, name)

    def list(self, plural: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.kube.list(KINDS[plural], self.namespace, label_selector)

    def create(self, plural: str, body: dict[str, Any]) -> None:
        body["metadata"]["namespace"] = self.namespace
        assert self.kube.create(KINDS[plural], body), f"{plural}/{body['metadata']['name']} exists already"

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        assert self.kube.patch(KINDS[plural], self.namespace, name, patch) is not None, f"{plural}/{name}"

    def delete(self, plural: str, name: str) -> None:
        assert self.kube.delete(KINDS[plural], self.namespace, name), f"{plural}/{name} is not there"

    def events(self) -> list[dict[str, Any]]:
        return self.list("events")

    # --- waiting ----------------------------------------------------------------------------------

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Poll ``check`` until it returns something truthy; fail with the namespace's events and the
        operator's log if it never does.  A passing API hiccup (kopf.TemporaryError) is a "not yet"."""
        deadline = time.monotonic() + timeout
        hiccup = ""
        while time.monotonic() < deadline:
            try:
                found = check()
            except kopf.TemporaryError as error:
                found, hiccup = None, f"\nlast API error: {error}"
            if found:
                return found
            time.sleep(1.0)
        pytest.fail(f"waited {timeout:.0f}s for {what}{hiccup}\n{self.diagnostics()}")

    def wait_for_status(self, plural: str, name: str, **wanted: Any) -> dict[str, Any]:
        """Wait until the object's status has ``wanted``: status fields, or condition types
        (``Ready="True"``, ``Degraded=("True", "VaultMismatch")``: status, or status and reason)."""

        def matches() -> dict[str, Any] | None:
            status = (self.get(plural, name) or {}).get("status") or {}
            return status if status_has(status, wanted) else None

        return self.wait_for(f"{plural}/{name} status {wanted}", matches)  # type: ignore[no-any-return]

    def gone(self, plural: str, name: str) -> None:
        self.wait_for(f"{plural}/{name} to go", lambda: self.get(plural, name) is None)

    def diagnostics(self) -> str:
        """The namespace's latest events and the operator's log tail, for a failure message."""
        try:
            events = sorted(self.events(), key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        except kopf.TemporaryError as error:
            events, lines = [], [f"(events: {error})"]
        else:
            lines = []
        for event in events[-30:]:
            regarding = event.get("involvedObject") or {}
            lines.append(f"{regarding.get('kind')}/{regarding.get('name')} {event.get('type')} "
                         f"{event.get('reason')}: {event.get('message')}")  # fmt: skip
        logs = subprocess.run(
            ["kubectl", "--context", self.context, "-n", OPERATOR_NAMESPACE, "logs", "-l", OPERATOR_PODS,
             "--tail", "150"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return "events:\n" + "\n".join(lines) + "\noperator log:\n" + (logs.stdout or logs.stderr)

    # --- reaching Services from here --------------------------------------------------------------

    @contextlib.contextmanager
    def port_forward(self, service: str, port: int, namespace: str | None = None) -> Iterator[str]:
        """``kubectl port-forward`` to ``service``:``port`` on a free loopback port; its base URL."""
        command = ["kubectl", "--context", self.context, "-n", namespace or self.namespace,
                   "port-forward", "--address", "127.0.0.1", f"service/{service}", f":{port}"]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        # Read its output for as long as it runs: a full pipe would stall the forwarding.
        threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
        try:
            yield f"http://127.0.0.1:{_forwarded_port(lines, ' '.join(command))}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @contextlib.contextmanager
    def dynamodb(self, table: str) -> Iterator[Any]:
        """A boto3 DynamoDB client for Table ``table`` (its metadata.name), as an application makes one:
        the endpoint from its status, the credentials from the Secret its status names."""
        status = (self.get("tables", table) or {}).get("status") or {}
        assert status.get("endpoint") and status.get("credentialsSecret"), f"Table {table} status: {status}"
        endpoint = urlsplit(status["endpoint"])
        assert endpoint.hostname is not None and endpoint.port is not None, status["endpoint"]
        service, namespace = endpoint.hostname.split(".")[:2]  # <service>.<namespace>.svc
        secret = self.get("secrets", status["credentialsSecret"])
        assert secret is not None, f"Secret {status['credentialsSecret']} of Table {table}"
        credentials = credentials_from_secret(secret)
        with self.port_forward(service, endpoint.port, namespace) as url:
            yield make_client(url, aws_access_key_id=credentials.access_key_id,
                              aws_secret_access_key=credentials.secret_access_key)  # fmt: skip


def status_has(status: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether ``status`` has every field in ``wanted``; capitalised keys are condition types."""
    by_type = {c["type"]: c for c in status.get("conditions") or ()}
    for key, value in wanted.items():
        if key[:1].isupper():
            condition = by_type.get(key, {})
            seen = (condition.get("status"), condition.get("reason"))
            if (seen if isinstance(value, tuple) else seen[0]) != value:
                return False
        elif status.get(key) != value:
            return False
    return True


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


def _forwarded_port(lines: queue.Queue[str | None], command: str, timeout: float = 30.0) -> int:
    """The local port from kubectl's "Forwarding from 127.0.0.1:PORT -> ..." line."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        found = _FORWARDING.search(line)
        if found:
            return int(found.group(1))
    pytest.fail(f"{command} did not start forwarding:\n{''.join(seen)}")


def table_items(ddb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every item of the table, by partition key ``pk`` (a consistent scan)."""
    pages = ddb.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True)
    return sorted((item for page in pages for item in page["Items"]), key=lambda item: item["pk"]["S"])


def manifest(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """A tablekeeper object to create (the API server sets uid, resourceVersion and the rest)."""
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}


# --- the vault store (MinIO) ----------------------------------------------------------------------


@dataclass(frozen=True)
class VaultStore:
    """This session's vault: a prefix of MinIO's bucket, its S3 credentials and its key."""

    url: str
    endpoint: str  # as the cluster reaches it
    access_key_id: str
    secret_access_key: str
    key: VaultKey

    def spec(self) -> dict[str, Any]:
        """The BackupVault's spec."""
        return {
            "url": self.url,
            "s3": {"endpoint": self.endpoint, "region": REGION, "forcePathStyle": True},
            "credentialsSecretRef": {"name": S3_SECRET},
            "keySecretRef": {"name": KEY_SECRET},
        }

    @contextlib.contextmanager
    def opened(self, kind: KindCluster) -> Iterator[Vault]:
        """The vault itself, read from here through a port-forward to MinIO (no engine, no operator)."""
        with kind.port_forward(MINIO_SERVICE, MINIO_PORT, STORE_NAMESPACE) as local:
            store = open_store(self.url, endpoint_url=local, region=REGION, access_key_id=self.access_key_id,
                               secret_access_key=self.secret_access_key)  # fmt: skip
            yield Vault(store, self.key)

    def ensure_bucket(self, kind: KindCluster) -> None:
        with kind.port_forward(MINIO_SERVICE, MINIO_PORT, STORE_NAMESPACE) as local:
            s3 = boto3.client("s3", endpoint_url=local, region_name=REGION,
                              aws_access_key_id=self.access_key_id,
                              aws_secret_access_key=self.secret_access_key,
                              config=Config(s3={"addressing_style": "path"}))  # fmt: skip
            try:
                s3.create_bucket(Bucket=BUCKET)
            except botocore.exceptions.ClientError as error:
                if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise


def _decoded(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode((secret.get("data") or {})[key])


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kind() -> Iterator[KindCluster]:
    """The cluster, in a namespace of this session's own; deleted afterwards unless TK_KIND_KEEP=1."""
    name = os.environ[CLUSTER_ENV].strip()
    api = k8s_config.new_client_from_config(context=context_of(name), persist_config=False)
    cluster = KindCluster(name, Kube(api), f"tk-e2e-{secrets.token_hex(3)}")
    cluster.kubectl("create", "namespace", cluster.namespace)
    try:
        for secret in (S3_SECRET, KEY_SECRET):
            found = cluster.get("secrets", secret, STORE_NAMESPACE)
            if found is None:
                pytest.fail(f"Secret {STORE_NAMESPACE}/{secret} is missing: hack/e2e-kind.sh creates it")
            cluster.create("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                       "metadata": {"name": secret}, "data": found["data"]})  # fmt: skip
        yield cluster
    finally:
        if os.environ.get("TK_KIND_KEEP") != "1":
            cluster.kubectl("delete", "namespace", cluster.namespace, "--wait=false")


@pytest.fixture(scope="session")
def vault_store(kind: KindCluster) -> VaultStore:
    """MinIO's bucket (made if missing), under a prefix named after this session's namespace."""
    s3 = kind.get("secrets", S3_SECRET)
    key = kind.get("secrets", KEY_SECRET)
    assert s3 is not None and key is not None
    store = VaultStore(
        url=f"s3://{BUCKET}/{kind.namespace}",
        endpoint=f"http://{MINIO_SERVICE}.{STORE_NAMESPACE}.svc:{MINIO_PORT}",
        access_key_id=_decoded(s3, "AWS_ACCESS_KEY_ID").decode(),
        secret_access_key=_decoded(s3, "AWS_SECRET_ACCESS_KEY").decode(),
        key=VaultKey.from_secret(base64.b64decode(_decoded(key, "vault.key").strip())),
    )
    store.ensure_bucket(kind)
    return store


@pytest.fixture(scope="session")
def vault(kind: KindCluster, vault_store: VaultStore) -> VaultStore:
    """The BackupVault "primary" on MinIO, Ready."""
    kind.create("backupvaults", manifest("BackupVault", VAULT, vault_store.spec()))
    kind.wait_for_status("backupvaults", VAULT, phase="Ready", Ready="True")
    return vault_store
