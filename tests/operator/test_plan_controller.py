"""The BackupPlan controller end to end: its handlers on a real kopf, against a fake Kubernetes API.

The operator runs as a subprocess (``python -m tests.operator.test_plan_controller``)
with only the BackupPlan handlers registered, through the module's own
``register``, and a clock the test moves: the time in a file, read at each
pass.  The fake (kmock's emulator, not a cluster) runs no controllers: no
Backup controller makes the Backups; the test plays it where it must, by
writing a child's status.  Tables are plain objects in the fake.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import pytest
import pytest_asyncio
import yaml

from tests.operator.conftest import ROOT, VersionedEmulator, serve_kubernetes

NAMESPACE = "tk-test"
API = "/apis/tablekeeper.io/v1alpha1/namespaces/tk-test"
MERGE = "application/merge-patch+json"
WAIT = 15.0
T0 = datetime(2026, 3, 1, 2, 55, tzinfo=UTC)
AT_3 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio, pytest.mark.kmock(cls=VersionedEmulator)]


def main() -> None:
    """The operator with the BackupPlan handlers only, its clock read from $TK_TEST_CLOCK."""
    import kopf

    from tablekeeper.controllers import plans
    from tablekeeper.controllers.kube import Kube
    from tablekeeper.controllers.operator import operator_settings

    clock_file = Path(os.environ["TK_TEST_CLOCK"])

    def clock() -> datetime:
        return datetime.fromisoformat(clock_file.read_text().strip())

    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)
    settings = plans.PlanSettings(tick=0.2, max_interval=0.5, clock=clock)
    plans.register(registry, plans.PlanController(settings, Kube.from_environment))
    asyncio.run(
        kopf.operator(registry=registry, settings=operator_settings(), standalone=True, clusterwide=True)
    )


class Cluster:
    """The fake API, the operator watching it, and the clock the operator reads."""

    def __init__(self, fake: kmock.KubernetesEmulator, workdir: Path) -> None:
        self.fake, self.workdir = fake, workdir
        self.clock_file = workdir / "clock"
        self.log = workdir / "operator.log"
        self.operator: subprocess.Popen[bytes] | None = None
        self.set_clock(T0)

    def set_clock(self, when: datetime) -> None:
        self.clock_file.write_text(when.isoformat())

    def start_operator(self) -> None:
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": str(self.fake.url).rstrip("/")}}],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        env = dict(
            os.environ, KUBECONFIG=str(kubeconfig), PYTHONUNBUFFERED="1", TK_TEST_CLOCK=str(self.clock_file)
        )
        command = [sys.executable, "-m", "tests.operator.test_plan_controller"]
        with self.log.open("wb") as log:
            self.operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def stop(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait()

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        async with self.fake.request(
            method, path, json=body, headers={"Content-Type": content_type}
        ) as response:
            data = await response.json()
            return data if response.status < 400 else None

    async def wait_for(self, what: str, check: Callable[[], Awaitable[Any]], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await check()
            if found:
                return found
            if self.operator is not None and self.operator.poll() is not None:
                break
            await asyncio.sleep(0.1)
        pytest.fail(f"waited {timeout:.0f}s for {what}; operator log:\n{self.log.read_text()[-6000:]}")

    async def operator_watching(self) -> None:
        async def watching() -> bool:
            return any(
                r.action == kmock.action.WATCH
                and r.resource is not None
                and r.resource.plural == "backupplans"
                for r in self.fake
            )

        await self.wait_for("the operator to watch BackupPlans", watching)

    # --- objects ---------------------------------------------------------------------------------

    async def create_table(self, name: str, **labels: str) -> None:
        body = {
            "apiVersion": "tablekeeper.io/v1alpha1",
            "kind": "Table",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels, "uid": str(uuid.uuid4())},
            "spec": {"keySchema": {"partitionKey": {"name": "pk", "type": "S"}}},
        }
        assert await self.request("POST", f"{API}/tables", body) is not None

    async def create_plan(
        self, rule: dict[str, Any], selection: dict[str, Any], suspend: bool = False
    ) -> str:
        uid = str(uuid.uuid4())
        body = {
            "apiVersion": "tablekeeper.io/v1alpha1",
            "kind": "BackupPlan",
            # What the API server would set and the fake does not.
            "metadata": {
                "name": "nightly",
                "namespace": NAMESPACE,
                "uid": uid,
                "generation": 1,
                "resourceVersion": "1",
                "creationTimestamp": "2026-03-01T02:50:00Z",
                "labels": {"team": "shop"},
            },
            "spec": {
                "rules": [{"name": "daily", "targetVaultRef": {"name": "vault"}, **rule}],
                "selection": selection,
                "suspend": suspend,
            },
        }
        assert await self.request("POST", f"{API}/backupplans", body) is not None
        return uid

    async def patch_plan(self, patch: dict[str, Any]) -> None:
        assert await self.request("PATCH", f"{API}/backupplans/nightly", patch, MERGE) is not None

    async def plan(self) -> dict[str, Any]:
        return await self.request("GET", f"{API}/backupplans/nightly")  # type: ignore[no-any-return]

    async def backups(self) -> dict[str, dict[str, Any]]:
        listed = await self.request("GET", f"{API}/backups")
        return {b["metadata"]["name"]: b for b in (listed or {}).get("items", ())}

    async def mark_available(self, name: str, completed: datetime) -> None:
        status = {
            "status": {
                "phase": "Available",
                "backupStatus": "AVAILABLE",
                "startedAt": completed.isoformat(),
                "completedAt": completed.isoformat(),
            }
        }
        assert await self.request("PATCH", f"{API}/backups/{name}/status", status, MERGE) is not None

    def backup_lists(self) -> int:
        """How many times the operator listed Backups: one per pass."""
        return sum(
            1
            for r in self.fake
            if r.resource is not None and r.resource.plural == "backups" and r.action == kmock.action.LIST
        )

    async def advance(self, when: datetime) -> None:
        """Move the clock to ``when`` and wait for the pass the operator makes then (its timer makes one
        when the clock reaches the wake-up time it chose, at most ``max_interval`` after the last)."""
        before = self.backup_lists()
        self.set_clock(when)

        async def passed() -> bool:
            return self.backup_lists() > before

        await self.wait_for(f"a pass at {when.isoformat()}", passed)
        await asyncio.sleep(0.3)  # its writes

    async def wait_for_backups(self, count: int) -> dict[str, dict[str, Any]]:
        async def found() -> dict[str, dict[str, Any]] | None:
            backups = await self.backups()
            return backups if len(backups) == count else None

        return await self.wait_for(f"{count} Backups", found)  # type: ignore[no-any-return]

    def events(self) -> list[dict[str, Any]]:
        return [
            r.data
            for r in self.fake
            if r.resource is not None and r.resource.plural == "events" and r.action == kmock.action.CREATE
        ]


@pytest_asyncio.fixture
async def cluster(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> AsyncIterator[Cluster]:
    serve_kubernetes(kmock)
    running = Cluster(kmock, tmp_path)
    try:
        running.start_operator()
        await running.operator_watching()
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        if os.environ.get("TK_OPERATOR_LOG"):
            sys.stderr.write(running.log.read_text())


async def test_a_due_run_creates_one_backup_per_selected_table_and_a_second_pass_none(
    cluster: Cluster,
) -> None:
    await cluster.create_table("orders")
    await cluster.create_table("carts", tier="gold")
    await cluster.create_table("logs", tier="bronze")
    uid = await cluster.create_plan(
        {"schedule": "0 3 * * *", "lifecycle": {"deleteAfterDays": 7}},
        {"tableNames": ["orders"], "labelSelector": {"matchLabels": {"tier": "gold"}}},
    )

    async def scheduled() -> dict[str, Any] | None:
        status = (await cluster.plan()).get("status", {})
        return status if status.get("nextRunTime") == "2026-03-01T03:00:00Z" else None

    status = await cluster.wait_for("the first next run", scheduled)
    assert status["phase"] == "Active" and await cluster.backups() == {}

    cluster.set_clock(AT_3 + timedelta(seconds=30))
    backups = await cluster.wait_for_backups(2)
    assert set(backups) == {"nightly-daily-carts-202603010300", "nightly-daily-orders-202603010300"}
    orders = backups["nightly-daily-orders-202603010300"]
    assert orders["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "tablekeeper",
        "tablekeeper.io/plan": "nightly",
        "tablekeeper.io/rule": "daily",
        "tablekeeper.io/table": "orders",
    }
    (owner,) = orders["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "BackupPlan",
        "nightly",
        uid,
        True,
    )
    assert orders["spec"] == {
        "tableRef": {"name": "orders"},
        "vaultRef": {"name": "vault"},
        "backupName": "nightly-daily-orders-202603010300",
        "deletionPolicy": "Delete",
    }

    async def plan_info() -> dict[str, Any] | None:
        status = (await cluster.backups())["nightly-daily-orders-202603010300"].get("status", {})
        return status if status.get("plan") else None

    child_status = await cluster.wait_for("the child's plan info", plan_info)
    assert child_status["plan"] == {"name": "nightly", "rule": "daily"}
    assert child_status["expiresAt"] == "2026-03-08T03:00:00Z"

    await cluster.advance(AT_3 + timedelta(minutes=5))
    await cluster.advance(AT_3 + timedelta(minutes=6))
    assert len(await cluster.backups()) == 2
    status = (await cluster.plan())["status"]
    assert status["rules"][0]["lastRunTime"] == "2026-03-01T03:00:00Z"
    assert status["nextRunTime"] == "2026-03-02T03:00:00Z"
    assert [e["reason"] for e in cluster.events()].count("BackupCreated") == 2


async def test_run_now_with_keep_last_one_replaces_the_older_backup_once_the_new_one_is_available(
    cluster: Cluster,
) -> None:
    await cluster.create_table("orders")
    await cluster.create_plan({"schedule": "0 3 * * *", "keepLast": 1}, {"tableNames": ["orders"]})
    await cluster.patch_plan({"metadata": {"annotations": {"tablekeeper.io/run-now": "first"}}})
    (first,) = await cluster.wait_for_backups(1)
    assert first.startswith("nightly-daily-orders-now-")
    await cluster.mark_available(first, T0)

    cluster.set_clock(T0 + timedelta(minutes=1))
    await cluster.patch_plan({"metadata": {"annotations": {"tablekeeper.io/run-now": "second"}}})
    backups = await cluster.wait_for_backups(2)
    (second,) = set(backups) - {first}
    await cluster.advance(T0 + timedelta(minutes=2))
    assert set(await cluster.backups()) == {first, second}  # the new one is not there yet: keep the old

    await cluster.mark_available(second, T0 + timedelta(minutes=1))
    await cluster.advance(T0 + timedelta(minutes=3))
    remaining = await cluster.wait_for_backups(1)
    assert set(remaining) == {second}
    assert (await cluster.plan())["status"]["handledRunNow"] == "second"
    assert "RetentionDeleted" in [e["reason"] for e in cluster.events()]


async def test_a_suspended_plan_starts_no_scheduled_run_but_honours_run_now(cluster: Cluster) -> None:
    await cluster.create_table("orders")
    await cluster.create_plan({"schedule": "0 3 * * *"}, {"tableNames": ["orders"]}, suspend=True)

    async def suspended() -> bool:
        return (await cluster.plan()).get("status", {}).get("phase") == "Suspended"

    await cluster.wait_for("the Suspended phase", suspended)
    await cluster.advance(AT_3 + timedelta(seconds=30))
    await cluster.advance(AT_3 + timedelta(minutes=1))
    assert await cluster.backups() == {}
    assert (await cluster.plan())["status"].get("nextRunTime") is None

    await cluster.patch_plan({"metadata": {"annotations": {"tablekeeper.io/run-now": json.dumps("now")}}})
    (name,) = await cluster.wait_for_backups(1)
    assert "-now-" in name


async def test_deleting_a_plan_retains_its_backups_in_the_vault(cluster: Cluster) -> None:
    await cluster.create_table("orders")
    await cluster.create_plan({"schedule": "0 3 * * *"}, {"tableNames": ["orders"]})
    await cluster.patch_plan({"metadata": {"annotations": {"tablekeeper.io/run-now": "one"}}})
    (name,) = await cluster.wait_for_backups(1)

    async def finalized() -> bool:
        return bool((await cluster.plan())["metadata"].get("finalizers"))

    await cluster.wait_for("the plan's finalizer", finalized)
    assert await cluster.request("DELETE", f"{API}/backupplans/nightly") is not None

    async def gone() -> bool:
        return await cluster.request("GET", f"{API}/backupplans/nightly") is None

    await cluster.wait_for("the plan to go", gone)
    assert (await cluster.backups())[name]["spec"]["deletionPolicy"] == "Retain"


if __name__ == "__main__":
    main()
