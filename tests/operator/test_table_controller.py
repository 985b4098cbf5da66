"""The Table controller end to end: the real operator against a fake Kubernetes API and a real engine.

``tablekeeper operator`` runs as a subprocess, logged in through a kubeconfig
that points at kmock's in-memory fake of the Kubernetes API (an emulator, not
a cluster: it runs no controllers, so no StatefulSet makes a pod).  In place
of the pod, each test starts a real ``tablekeeper engine`` with the
credentials from the Secret the operator generated, on a port the operator
was told about through ``TABLEKEEPER_ENGINE_ENDPOINTS``.  Then it checks the
table through boto3, as any client would.

The harness (``tests/operator/conftest.py``) is the one the other controllers'
tests use.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.operator.conftest import NAMESPACE, OperatorHarness, VersionedEmulator, free_port, table_body

pytestmark = [pytest.mark.timeout(120), pytest.mark.kmock(cls=VersionedEmulator)]


async def ready_table(harness: OperatorHarness, name: str, **spec: Any) -> dict[str, Any]:
    """A Table the operator has made Active: created, its engine started, the table in it."""
    harness.start_operator(name)
    await harness.operator_watching()
    await harness.create("tables", table_body(name, NAMESPACE, **spec))
    await harness.start_engine(name)
    return await harness.wait_for_status("tables", name, phase="Active", Ready="True")


async def describe(harness: OperatorHarness, table_name: str) -> dict[str, Any]:
    """DescribeTable in the engine of the Table "orders"."""
    return (await harness.call("orders", "describe_table", TableName=table_name))["Table"]  # type: ignore[no-any-return]


async def gone(harness: OperatorHarness, plural: str, name: str) -> bool:
    return await harness.get(plural, name) is None


ORDERS: dict[str, Any] = {
    "tableName": "Orders",
    "keySchema": {"partitionKey": {"name": "customerId", "type": "S"},
                  "sortKey": {"name": "orderId", "type": "S"}},
    "stream": {"enabled": True, "viewType": "NEW_AND_OLD_IMAGES"},
    "tags": {"team": "checkout"},
    "storage": {"size": "2Gi"},
}


@pytest.mark.asyncio
async def test_a_new_table_gets_a_secret_services_and_a_statefulset(harness: OperatorHarness) -> None:
    harness.start_operator("orders")
    await harness.operator_watching()
    await harness.create("tables", table_body("orders", NAMESPACE, **ORDERS))
    statefulset = await harness.wait_for(
        "the StatefulSet", lambda: harness.get("statefulsets", "orders-engine"))
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert "--auth" in container["args"] and "sigv4" in container["args"]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    owner = statefulset["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Table", "orders")
    for service in ("orders-engine", "orders-engine-headless"):
        assert await harness.get("services", service) is not None
    secret = await harness.get("secrets", "orders-credentials")
    assert secret is not None
    assert set(secret["data"]) >= {"credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    status = await harness.wait_for_status("tables", "orders", phase="Creating", Ready="False")
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "EngineStarting")


@pytest.mark.asyncio
async def test_once_the_engine_answers_the_table_is_created_in_it_and_ready(harness: OperatorHarness) -> None:
    status = await ready_table(harness, "orders", **ORDERS)
    described = await describe(harness, "Orders")
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
    assert await harness.posted("Normal", "Active")  # an event when Ready turned True


@pytest.mark.asyncio
async def test_the_status_timer_refreshes_the_item_count(harness: OperatorHarness) -> None:
    await ready_table(harness, "orders", **ORDERS)
    item = {"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}
    await harness.call("orders", "put_item", TableName="Orders", Item=item)
    await harness.wait_for_status("tables", "orders", itemCount=1)


@pytest.mark.asyncio
async def test_an_update_adds_an_index_and_turns_ttl_on_in_the_engine(harness: OperatorHarness) -> None:
    await ready_table(harness, "orders", **ORDERS)
    gsi = {"indexName": "byStatus", "keySchema": {"partitionKey": {"name": "status", "type": "S"}},
           "projection": {"projectionType": "KEYS_ONLY"}}  # fmt: skip
    ttl_spec = {"enabled": True, "attributeName": "expiresAt"}
    await harness.patch("tables", "orders", {"spec": {"globalSecondaryIndexes": [gsi], "ttl": ttl_spec}})

    async def applied() -> bool:
        described = await describe(harness, "Orders")
        indexes = {i["IndexName"]: i["IndexStatus"] for i in described.get("GlobalSecondaryIndexes", ())}
        ttl = await harness.call("orders", "describe_time_to_live", TableName="Orders")
        ttl_on = ttl["TimeToLiveDescription"].get("AttributeName") == "expiresAt"
        return indexes.get("byStatus") == "ACTIVE" and ttl_on

    await harness.wait_for("the index and TTL in the engine", applied)
    await harness.wait_for_status("tables", "orders", phase="Active", Ready="True")


@pytest.mark.asyncio
async def test_a_changed_key_schema_is_refused_and_the_table_degraded(harness: OperatorHarness) -> None:
    await ready_table(harness, "orders", **ORDERS)
    other = {"partitionKey": {"name": "other", "type": "S"}}
    await harness.patch("tables", "orders", {"spec": {"keySchema": other}})
    status = await harness.wait_for_status("tables", "orders", phase="Failed")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ChangeRefused")
    assert "keySchema is immutable" in degraded["message"]
    described = await describe(harness, "Orders")
    assert described["KeySchema"][0]["AttributeName"] == "customerId"  # the table is as it was


@pytest.mark.asyncio
async def test_deleting_a_table_deletes_it_in_the_engine_and_removes_its_objects(
    harness: OperatorHarness,
) -> None:
    await ready_table(harness, "orders", **ORDERS)
    await harness.delete("tables", "orders")
    await harness.gone("tables", "orders")
    made = (("statefulsets", "orders-engine"), ("services", "orders-engine"),
            ("services", "orders-engine-headless"), ("secrets", "orders-credentials"))
    for plural, name in made:
        assert await gone(harness, plural, name), (plural, name)
    tables = await harness.call("orders", "list_tables")
    assert tables["TableNames"] == []


@pytest.mark.asyncio
async def test_a_protected_table_is_kept_until_its_protection_is_turned_off(harness: OperatorHarness) -> None:
    await ready_table(harness, "orders", **ORDERS, deletionProtection=True)
    await harness.delete("tables", "orders")
    status = await harness.wait_for_status("tables", "orders", phase="Deleting")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "DeletionProtected")
    assert (await describe(harness, "Orders"))["TableStatus"] == "ACTIVE"

    await harness.patch("tables", "orders", {"spec": {"deletionProtection": False}})
    await harness.gone("tables", "orders")
    assert (await harness.call("orders", "list_tables"))["TableNames"] == []


@pytest.mark.asyncio
async def test_the_operator_answers_liveness_and_metrics(harness: OperatorHarness) -> None:
    harness.metrics_port = free_port()
    harness.start_operator("orders")
    await harness.operator_watching()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{harness.liveness_port}/healthz") as response:
            assert response.status == 200
        async with http.get(f"http://127.0.0.1:{harness.metrics_port}/metrics") as response:
            assert response.status == 200
            assert "# TYPE tablekeeper_reconciles_total counter" in await response.text()
