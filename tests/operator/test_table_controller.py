"""The Table controller end to end: the real operator against a fake Kubernetes API and a real engine.

``tablekeeper operator`` runs as a subprocess, logged in through a kubeconfig
that points at kmock's in-memory fake of the Kubernetes API (an emulator, not
a cluster: it runs no controllers, so no StatefulSet makes a pod).  In place
of the pod, each test starts a real ``tablekeeper engine`` with the
credentials from the Secret the operator generated, on a port the operator
was told about through ``TABLEKEEPER_ENGINE_ENDPOINTS``.  Then it checks the
table through boto3, as any client would.

The kmock server lives on the test's event loop: everything that blocks
(starting the engine, boto3) runs in a thread so the fake keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest
import pytest_asyncio
import yaml

from tests.conftest import EngineProcess, make_client, start_engine
from tests.operator.conftest import VersionedEmulator, serve_kubernetes, table_body

NAMESPACE = "tk-test"
TABLES = "/apis/tablekeeper.io/v1alpha1/namespaces/tk-test/tables"
WAIT = 30.0

pytestmark = [pytest.mark.timeout(120), pytest.mark.kmock(cls=VersionedEmulator)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """The fake API, the operator process watching it, and the engine the test runs for one Table."""

    def __init__(self, fake: kmock.KubernetesEmulator, workdir: Path, engine_port: int) -> None:
        self.fake, self.workdir, self.engine_port = fake, workdir, engine_port
        self.engine: EngineProcess | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.log = workdir / "operator.log"
        self.liveness_port, self.metrics_port = free_port(), free_port()

    def start_operator(self, table: str) -> None:
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": str(self.fake.url).rstrip("/")}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))  # fmt: skip
        endpoints = {f"{NAMESPACE}/{table}": f"http://127.0.0.1:{self.engine_port}"}
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONUNBUFFERED="1",
                   TABLEKEEPER_ENGINE_ENDPOINTS=json.dumps(endpoints))  # fmt: skip
        # Cluster-wide: kmock 0.8 cannot parse GET /api/v1/namespaces (it takes "namespaces" for a
        # namespaced path and answers 500), which kopf lists when given --namespace.
        extra = os.environ.get("TK_OPERATOR_ARGS", "").split()  # e.g. "--log-level DEBUG"
        command = [sys.executable, "-m", "tablekeeper", *extra, "operator",
                   "--liveness-port", str(self.liveness_port), "--metrics-port", str(self.metrics_port),
                   "--status-interval", "1", "--retry-delay", "0.5"]  # fmt: skip
        with self.log.open("wb") as log:
            self.operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait()
        if self.engine is not None:
            self.engine.stop()

    # --- the fake API, over HTTP as the operator sees it -------------------------------------------

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        headers = {"Content-Type": content_type}
        async with self.fake.request(method, path, json=body, headers=headers) as response:
            data = await response.json()
            return data if response.status < 400 else None

    async def get(self, path: str) -> dict[str, Any] | None:
        return await self.request("GET", path)  # type: ignore[no-any-return]

    async def operator_watching(self) -> None:
        """Wait until the operator watches Tables.

        The emulator's watch replays every existing object, whatever version the
        watch asks from; an object created before the watch would reach kopf
        twice, the second time stale, and the event of kopf's own first patch
        could fall between the replay and the live stream.  Creating objects
        only once the watch is up avoids both.
        """

        async def watching() -> bool:
            return any(r.action == kmock.action.WATCH and r.resource is not None
                       and r.resource.plural == "tables" for r in self.fake)  # fmt: skip

        await self.wait_for("the operator to watch Tables", watching)

    async def create_table(self, name: str, **spec: Any) -> None:
        assert await self.request("POST", TABLES, table_body(name, NAMESPACE, **spec)) is not None

    async def patch_table(self, name: str, spec: dict[str, Any]) -> None:
        patch = {"spec": spec}
        merge = "application/merge-patch+json"
        assert await self.request("PATCH", f"{TABLES}/{name}", patch, merge) is not None

    async def table(self, name: str) -> dict[str, Any] | None:
        return await self.get(f"{TABLES}/{name}")

    async def wait_for(self, what: str, check: Callable[[], Awaitable[Any]], timeout: float = WAIT) -> Any:
        """Poll ``check`` until it returns something truthy; fail with the operator's log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await check()
            if found:
                return found
            if self.operator is not None and self.operator.poll() is not None:
                break
            await asyncio.sleep(0.2)
        pytest.fail(f"waited {timeout:.0f}s for {what}; operator log:\n{self.log.read_text()[-6000:]}")

    async def wait_for_status(self, name: str, **wanted: Any) -> dict[str, Any]:
        async def matches() -> dict[str, Any] | None:
            table = await self.table(name)
            status = (table or {}).get("status", {})
            ready = next((c for c in status.get("conditions", ()) if c["type"] == "Ready"), {})
            seen = {**status, "ready": ready.get("status")}
            return status if all(seen.get(k) == v for k, v in wanted.items()) else None

        return await self.wait_for(f"Table {name} status {wanted}", matches)  # type: ignore[no-any-return]

    # --- the engine in place of the pod ------------------------------------------------------------

    async def start_engine_from_secret(self, table: str) -> EngineProcess:
        path = f"/api/v1/namespaces/{NAMESPACE}/secrets/{table}-credentials"
        secret = await self.wait_for(f"Secret {table}-credentials", lambda: self.get(path))
        credentials = self.workdir / "credentials"
        credentials.write_bytes(base64.b64decode(secret["data"]["credentials"]))
        data = self.workdir / "engine-data"
        data.mkdir(exist_ok=True)
        self.engine = await asyncio.to_thread(
            start_engine, data, "--auth", "sigv4", "--credentials", str(credentials), port=self.engine_port
        )
        key_id = base64.b64decode(secret["data"]["AWS_ACCESS_KEY_ID"]).decode()
        secret_key = base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode()
        self.ddb = make_client(self.engine.endpoint, aws_access_key_id=key_id,
                               aws_secret_access_key=secret_key)
        return self.engine

    async def describe(self, table_name: str) -> dict[str, Any]:
        return (await asyncio.to_thread(self.ddb.describe_table, TableName=table_name))["Table"]  # type: ignore[no-any-return]

    def events(self) -> list[dict[str, Any]]:
        return [r.data for r in self.fake if r.resource is not None
                and r.resource.plural == "events" and r.action == kmock.action.CREATE]


@pytest_asyncio.fixture
async def cluster(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> AsyncIterator[Cluster]:
    serve_kubernetes(kmock)
    running = Cluster(kmock, tmp_path, free_port())
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        if os.environ.get("TK_OPERATOR_LOG"):
            sys.stderr.write(running.log.read_text())


async def ready_table(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    """A Table the operator has made Active: created, its engine started, the table in it."""
    cluster.start_operator(name)
    await cluster.operator_watching()
    await cluster.create_table(name, **spec)
    await cluster.start_engine_from_secret(name)
    return await cluster.wait_for_status(name, phase="Active", ready="True")


ORDERS: dict[str, Any] = {
    "tableName": "Orders",
    "keySchema": {"partitionKey": {"name": "customerId", "type": "S"},
                  "sortKey": {"name": "orderId", "type": "S"}},
    "stream": {"enabled": True, "viewType": "NEW_AND_OLD_IMAGES"},
    "tags": {"team": "checkout"},
    "storage": {"size": "2Gi"},
}


@pytest.mark.asyncio
async def test_a_new_table_gets_a_secret_services_and_a_statefulset(cluster: Cluster) -> None:
    cluster.start_operator("orders")
    await cluster.operator_watching()
    await cluster.create_table("orders", **ORDERS)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/orders-engine"
    statefulset = await cluster.wait_for("the StatefulSet", lambda: cluster.get(path))
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert "--auth" in container["args"] and "sigv4" in container["args"]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    owner = statefulset["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Table", "orders")
    for service in ("orders-engine", "orders-engine-headless"):
        assert await cluster.get(f"/api/v1/namespaces/{NAMESPACE}/services/{service}") is not None
    secret = await cluster.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/orders-credentials")
    assert secret is not None
    assert set(secret["data"]) >= {"credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    status = await cluster.wait_for_status("orders", phase="Creating", ready="False")
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "EngineStarting")


@pytest.mark.asyncio
async def test_once_the_engine_answers_the_table_is_created_in_it_and_ready(cluster: Cluster) -> None:
    status = await ready_table(cluster, "orders", **ORDERS)
    described = await cluster.describe("Orders")
    assert [k["AttributeName"] for k in described["KeySchema"]] == ["customerId", "orderId"]
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert status["tableArn"] == described["TableArn"]
    assert status["tableStatus"] == "ACTIVE"
    assert status["endpoint"] == "http://orders-engine.tk-test.svc:8000"
    assert status["credentialsSecret"] == "orders-credentials"
    assert status["itemCount"] == 0
    by_type = {c["type"]: c for c in status["conditions"]}
    assert (by_type["Ready"]["status"], by_type["Progressing"]["status"], by_type["Degraded"]["status"]) == (
        "True", "False", "False")  # fmt: skip
    assert all(c["lastTransitionTime"].endswith("Z") for c in status["conditions"])
    reasons = {(e["type"], e["reason"]) for e in cluster.events()}
    assert ("Normal", "Active") in reasons  # an event when Ready turned True


@pytest.mark.asyncio
async def test_the_status_timer_refreshes_the_item_count(cluster: Cluster) -> None:
    await ready_table(cluster, "orders", **ORDERS)
    item = {"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}
    await asyncio.to_thread(cluster.ddb.put_item, TableName="Orders", Item=item)
    await cluster.wait_for_status("orders", itemCount=1)


@pytest.mark.asyncio
async def test_an_update_adds_an_index_and_turns_ttl_on_in_the_engine(cluster: Cluster) -> None:
    await ready_table(cluster, "orders", **ORDERS)
    gsi = {"indexName": "byStatus", "keySchema": {"partitionKey": {"name": "status", "type": "S"}},
           "projection": {"projectionType": "KEYS_ONLY"}}  # fmt: skip
    await cluster.patch_table("orders", {"globalSecondaryIndexes": [gsi],
                                         "ttl": {"enabled": True, "attributeName": "expiresAt"}})  # fmt: skip

    async def applied() -> bool:
        described = await cluster.describe("Orders")
        indexes = {i["IndexName"]: i["IndexStatus"] for i in described.get("GlobalSecondaryIndexes", ())}
        ttl = await asyncio.to_thread(cluster.ddb.describe_time_to_live, TableName="Orders")
        ttl_on = ttl["TimeToLiveDescription"].get("AttributeName") == "expiresAt"
        return indexes.get("byStatus") == "ACTIVE" and ttl_on

    await cluster.wait_for("the index and TTL in the engine", applied)
    await cluster.wait_for_status("orders", phase="Active", ready="True")


@pytest.mark.asyncio
async def test_a_changed_key_schema_is_refused_and_the_table_degraded(cluster: Cluster) -> None:
    await ready_table(cluster, "orders", **ORDERS)
    await cluster.patch_table("orders", {"keySchema": {"partitionKey": {"name": "other", "type": "S"}}})
    status = await cluster.wait_for_status("orders", phase="Failed")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ChangeRefused")
    assert "keySchema is immutable" in degraded["message"]
    described = await cluster.describe("Orders")
    assert described["KeySchema"][0]["AttributeName"] == "customerId"  # the table is as it was


@pytest.mark.asyncio
async def test_deleting_a_table_deletes_it_in_the_engine_and_removes_its_objects(cluster: Cluster) -> None:
    await ready_table(cluster, "orders", **ORDERS)
    async with cluster.fake.delete(f"{TABLES}/orders") as response:
        assert response.status < 300

    async def gone() -> bool:
        return await cluster.table("orders") is None

    await cluster.wait_for("the Table to go", gone)
    for path in ("/apis/apps/v1/namespaces/tk-test/statefulsets/orders-engine",
                 "/api/v1/namespaces/tk-test/services/orders-engine",
                 "/api/v1/namespaces/tk-test/services/orders-engine-headless",
                 "/api/v1/namespaces/tk-test/secrets/orders-credentials"):  # fmt: skip
        assert await cluster.get(path) is None, path
    tables = await asyncio.to_thread(cluster.ddb.list_tables)
    assert tables["TableNames"] == []


@pytest.mark.asyncio
async def test_a_protected_table_is_kept_until_its_protection_is_turned_off(cluster: Cluster) -> None:
    await ready_table(cluster, "orders", **ORDERS, deletionProtection=True)
    async with cluster.fake.delete(f"{TABLES}/orders") as response:
        assert response.status < 300
    status = await cluster.wait_for_status("orders", phase="Deleting")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "DeletionProtected")
    assert (await cluster.describe("Orders"))["TableStatus"] == "ACTIVE"

    await cluster.patch_table("orders", {"deletionProtection": False})

    async def gone() -> bool:
        return await cluster.table("orders") is None

    await cluster.wait_for("the Table to go", gone)
    assert (await asyncio.to_thread(cluster.ddb.list_tables))["TableNames"] == []


@pytest.mark.asyncio
async def test_the_operator_answers_liveness_and_metrics(cluster: Cluster) -> None:
    cluster.start_operator("orders")
    await cluster.operator_watching()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{cluster.liveness_port}/healthz") as response:
            assert response.status == 200
        async with http.get(f"http://127.0.0.1:{cluster.metrics_port}/metrics") as response:
            assert response.status == 200
            assert "# TYPE tablekeeper_reconciles_total counter" in await response.text()
