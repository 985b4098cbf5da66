"""Operator test helpers: Table models, and kmock's in-memory fake Kubernetes API set up for kopf.

The fake (``kmock.KubernetesEmulator``, served over HTTP on loopback) keeps
objects in memory; it sets no uid or resourceVersion, validates and defaults
nothing, merges patches as plain dicts and runs no controllers.  So:

* every resource it must serve is declared: kopf's own (namespaces, events,
  CRDs) and tablekeeper's, with their status subresource (``serve_kubernetes``);
* a Table is created with the uid and resourceVersion the API server would
  have given it (owner references need the uid; kopf's finalizer patch tests
  the resourceVersion, which the fake then never changes);
* a StatefulSet makes no pod: the tests start the engine process themselves.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import pytest
import pytest_asyncio
import yaml

from tablekeeper.resources.table import Table
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.pitr import deleted_table_backup_id
from tablekeeper.vault.pitr_archive import PitrArchive
from tablekeeper.vault.store import open_store
from tests.conftest import EngineProcess, make_client, start_engine

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"
"""The Kubernetes version the built objects are validated for (kubernetes-validate's schemas)."""

BUILTIN_RESOURCES = {
    "v1/namespaces": {"kind": "Namespace", "singular": "namespace", "namespaced": False},
    "v1/events": {"kind": "Event", "singular": "event", "namespaced": True},
    "v1/secrets": {"kind": "Secret", "singular": "secret", "namespaced": True},
    "v1/services": {"kind": "Service", "singular": "service", "namespaced": True},
    "v1/persistentvolumeclaims": {"kind": "PersistentVolumeClaim", "singular": "persistentvolumeclaim",
                                  "namespaced": True},
    "apps/v1/statefulsets": {"kind": "StatefulSet", "singular": "statefulset", "namespaced": True},
    "apiextensions.k8s.io/v1/customresourcedefinitions": {
        "kind": "CustomResourceDefinition", "singular": "customresourcedefinition", "namespaced": False},
}  # fmt: skip
VERBS = ("list", "watch", "get", "create", "patch", "update", "delete")


class VersionedEmulator(kmock.KubernetesEmulator):
    """kmock's emulator, plus what of the API server's optimistic concurrency kopf relies on.

    * resourceVersion: kopf checks after each patch that the watch stream
      brings the version the patch returned (and waits 5 seconds when it does
      not); the bare emulator keeps whatever version an object was created
      with.  Each write here sets a new one: in the object, its watch event
      and the reply.
    * a JSON patch whose ``test`` fails is refused with 422, as the API server
      does, not 500: kopf then patches again from a fresher body, where on a
      500 it would retry the same stale patch.  (The emulator's watch replays
      every object from the start, so kopf does see stale bodies.)
    * a patch that names ``spec`` raises the generation by one, as a spec change does.
    * a created object gets the name (from generateName), uid, generation and
      creationTimestamp the API server would give it, unless the test gave them (an object the operator
      creates, e.g. a Restore's Table, needs its uid for its children's owner).
    """

    _versions = itertools.count(2)

    async def _handle(self, request: kmock.Request) -> Any:
        if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            version = str(next(self._versions))
            if isinstance(request.data, dict):
                metadata = request.data.setdefault("metadata", {})
                metadata["resourceVersion"] = version
                if request.action == kmock.action.CREATE:
                    if "name" not in metadata and metadata.get("generateName"):
                        # kopf names its events this way; without it every event after the first
                        # in a namespace would clash (409) and be lost.
                        metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
                    metadata.setdefault("uid", str(uuid.uuid4()))
                    metadata.setdefault("generation", 1)
                    metadata.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                elif "spec" in request.data and request.resource is not None:
                    # A new spec is a new generation, as the API server counts it: a timer's pass
                    # stands down on it (verdicts.moved_on) even before the handler's verdict lands.
                    key = (request.resource, request.namespace, request.name)
                    if key in self.objects and not self.objects[key].deleted:
                        generation = self.objects[key].raw.get("metadata", {}).get("generation", 1)
                        metadata.setdefault("generation", generation + 1)
            elif isinstance(request.data, list):  # a JSON patch: its tests see the old version first
                request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as error:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(error)) from None


def table_model(name: str, namespace: str, annotations: dict[str, str] | None = None, **spec: Any) -> Table:
    """A valid Table (simple key unless given) as the API server would return it: with a uid."""
    body = table_body(name, namespace, **spec)
    if annotations:
        body["metadata"]["annotations"] = annotations
    return Table.model_validate(body)


def table_body(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("keySchema", {"partitionKey": {"name": "pk", "type": "S"}})
    return {
        "apiVersion": "tablekeeper.io/v1alpha1",
        "kind": "Table",
        # What the API server sets and the fake does not: kopf's finalizer patch tests resourceVersion.
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1,
                     "resourceVersion": "1"},
        "spec": spec,
    }


def crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((ROOT / "crds").glob("*.yaml"))]


def serve_kubernetes(fake: kmock.KubernetesEmulator) -> None:
    """Declare what kopf and the operator ask the fake for; load tablekeeper's CRDs into it."""
    for key, info in BUILTIN_RESOURCES.items():
        fake.resources[key] = kmock.ResourceInfo(verbs=set(VERBS), **info)  # type: ignore[arg-type]
    for crd in crds():
        spec = crd["spec"]
        for version in spec["versions"]:
            key = f"{spec['group']}/{version['name']}/{spec['names']['plural']}"
            fake.resources[key] = kmock.ResourceInfo(
                kind=spec["names"]["kind"],
                singular=spec["names"]["singular"],
                namespaced=spec["scope"] == "Namespaced",
                shortnames=set(spec["names"].get("shortNames", ())),
                categories=set(spec["names"].get("categories", ())),
                verbs=set(VERBS),
                subresources=set(version.get("subresources", {})),
            )
        fake.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None, crd["metadata"]["name"]] = crd


# --- the operator end to end: the fake API, the operator process, engines in place of pods ---------

NAMESPACE = "tk-test"
WAIT = 30.0
OPERATOR_PLURALS = ("tables", "backupvaults", "backups", "pitrconfigs")
"""The kinds the operator watches (those with handlers); objects are created once it watches them."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def resource_path(plural: str, name: str | None = None, namespace: str = NAMESPACE) -> str:
    """The fake API's URL path of a namespaced object (or collection) of a tablekeeper kind or a core one."""
    core = {"secrets", "services", "persistentvolumeclaims", "events"}
    prefix = "/api/v1" if plural in core else ("/apis/apps/v1" if plural == "statefulsets" else
                                                "/apis/tablekeeper.io/v1alpha1")  # fmt: skip
    collection = f"{prefix}/namespaces/{namespace}/{plural}"
    return collection if name is None else f"{collection}/{name}"


def resource_body(kind: str, name: str, spec: dict[str, Any], namespace: str = NAMESPACE,
                  created: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """A tablekeeper object as the API server holds it: uid, resourceVersion, generation, creation time."""
    stamp = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "tablekeeper.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1,
                     "resourceVersion": "1", "creationTimestamp": stamp},
        "spec": spec,
    }  # fmt: skip


def secret_body(name: str, data: dict[str, bytes], namespace: str = NAMESPACE) -> dict[str, Any]:
    """A Secret as the API returns it: ``data`` base64 (the fake turns no stringData into data)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }  # fmt: skip


class OperatorHarness:
    """The fake API, the operator process watching it, and the engines the test runs for its Tables.

    The kmock server lives on the test's event loop: everything that blocks (starting an engine,
    boto3) runs in a thread so the fake keeps answering.
    """

    def __init__(self, fake: kmock.KubernetesEmulator, workdir: Path) -> None:
        self.fake, self.workdir = fake, workdir
        self.ports: dict[str, int] = {}
        self.engines: dict[str, EngineProcess] = {}
        self.clients: dict[str, Any] = {}
        self.operator: subprocess.Popen[bytes] | None = None
        self.log = workdir / "operator.log"
        self.liveness_port = 0  # each start_operator() picks one
        self.metrics_port = 0  # none; set a port before start_operator() to have them served

    def start_operator(self, *tables: str) -> None:
        """Run ``tablekeeper operator`` against the fake; ``tables`` are the Tables it finds engines for."""
        self.ports.update({table: free_port() for table in tables})
        self.liveness_port = free_port()
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": str(self.fake.url).rstrip("/")}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))  # fmt: skip
        endpoints = {f"{NAMESPACE}/{table}": f"http://127.0.0.1:{port}" for table, port in self.ports.items()}
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONUNBUFFERED="1",
                   TABLEKEEPER_ENGINE_ENDPOINTS=json.dumps(endpoints))  # fmt: skip
        extra = os.environ.get("TK_OPERATOR_ARGS", "").split()  # e.g. "--log-level DEBUG"
        # Cluster-wide (kmock 0.8 answers GET /api/v1/namespaces with 500); --metrics-port 0: none.
        command = [sys.executable, "-m", "tablekeeper", *extra, "operator",
                   "--liveness-port", str(self.liveness_port), "--metrics-port", str(self.metrics_port),
                   "--status-interval", "1", "--retry-delay", "0.5"]  # fmt: skip
        with self.log.open("wb") as log:
            self.operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        self.stop_operator()
        for engine in self.engines.values():
            engine.stop()

    def stop_operator(self) -> None:
        """Stop the operator process alone (the engines go on), as an upgrade or a crash would; a later
        ``start_operator()`` (no tables: the ports stay) starts it again."""
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait()

    # --- the fake API, over HTTP as the operator sees it -------------------------------------------

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/json") -> Any:  # fmt: skip
        headers = {"Content-Type": content_type}
        async with self.fake.request(method, path, json=body, headers=headers) as answer:
            data = await answer.json()
            return data if answer.status < 400 else None

    async def get(self, plural: str, name: str) -> dict[str, Any] | None:
        return await self.request("GET", resource_path(plural, name))  # type: ignore[no-any-return]

    async def create(self, plural: str, body: dict[str, Any]) -> None:
        assert await self.request("POST", resource_path(plural), body) is not None, body

    async def patch(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        merge = "application/merge-patch+json"
        assert await self.request("PATCH", resource_path(plural, name), patch, merge) is not None

    async def delete(self, plural: str, name: str) -> None:
        async with self.fake.delete(resource_path(plural, name)) as response:
            assert response.status < 300

    async def operator_watching(self, plurals: tuple[str, ...] = OPERATOR_PLURALS) -> None:
        """Wait until the operator watches ``plurals``: the emulator's watch replays every object, so an
        object created before the watch would reach kopf twice (see test_table_controller)."""

        async def watching() -> bool:
            watched = {r.resource.plural for r in self.fake
                       if r.action == kmock.action.WATCH and r.resource is not None}  # fmt: skip
            return set(plurals) <= watched

        await self.wait_for(f"the operator to watch {', '.join(plurals)}", watching)

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[Any]], timeout: float = WAIT,
        last: Callable[[], str] | None = None,
    ) -> Any:
        """Poll ``check`` until it returns something truthy; if it never does, fail with what
        ``last`` says was seen last, the engines' recent output and the operator's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await check()
            if found:
                return found
            if self.operator is not None and self.operator.poll() is not None:
                break
            await asyncio.sleep(0.2)
        seen = "" if last is None else f"; last seen: {last()}"
        engines = "".join(f"engine {table}:\n{''.join(list(engine.recent)[-40:])}"
                          for table, engine in self.engines.items())  # fmt: skip
        # The timers' routine lines would push what happened out of the tail.
        log = "".join(line for line in self.log.read_text().splitlines(keepends=True)
                      if not ("Timer '" in line and "' succeeded." in line))  # fmt: skip
        pytest.fail(f"waited {timeout:.0f}s for {what}{seen}\nobjects:\n{await self.statuses()}{engines}"
                    f"operator log:\n{log[-8000:]}")  # fmt: skip

    async def statuses(self) -> str:
        """Every tablekeeper object's phase and conditions, one line each: what a failure shows."""
        lines = []
        for plural in (*OPERATOR_PLURALS, "restores", "backupplans"):
            listed = await self.request("GET", resource_path(plural)) or {}
            for obj in listed.get("items") or ():
                status = obj.get("status") or {}
                held = [f"{c.get('type')}={c.get('status')}({c.get('reason')}: {c.get('message')})"
                        for c in status.get("conditions") or ()
                        if c.get("type") in ("Ready", "Degraded")]  # fmt: skip
                name = (obj.get("metadata") or {}).get("name")
                lines.append(f"  {plural}/{name}: phase {status.get('phase')}; {'; '.join(held)}\n")
        return "".join(lines)

    async def wait_for_status(self, plural: str, name: str, **wanted: Any) -> dict[str, Any]:
        """Wait until the object's status has ``wanted``: status fields, or condition types
        (``Ready="True"``, ``Degraded=("True", "VaultMismatch")``: status, or status and reason)."""

        observed: dict[str, Any] = {}

        async def matches() -> dict[str, Any] | None:
            status = ((await self.get(plural, name)) or {}).get("status") or {}
            observed["status"] = status
            by_type = {c["type"]: c for c in status.get("conditions", ())}
            for key, value in wanted.items():
                if key[:1].isupper():
                    condition = by_type.get(key, {})
                    seen = (condition.get("status"), condition.get("reason"))
                    if (seen if isinstance(value, tuple) else seen[0]) != value:
                        return None
                elif status.get(key) != value:
                    return None
            return status

        return await self.wait_for(  # type: ignore[no-any-return]
            f"{plural}/{name} status {wanted}", matches, last=lambda: json.dumps(observed.get("status"))
        )

    async def gone(self, plural: str, name: str) -> None:
        async def absent() -> bool:
            return await self.get(plural, name) is None

        await self.wait_for(f"{plural}/{name} to go", absent)

    def events(self) -> list[dict[str, Any]]:
        return [r.data for r in self.fake if r.resource is not None
                and r.resource.plural == "events" and r.action == kmock.action.CREATE]  # fmt: skip

    async def posted(self, event_type: str, reason: str) -> bool:
        """Whether an event of that type and reason reaches the API. kopf posts events in the
        background, so one may land after the status patch of the same pass: wait for it."""

        async def found() -> bool:
            return (event_type, reason) in {(e["type"], e["reason"]) for e in self.events()}

        return bool(await self.wait_for(f"a {event_type} {reason} event", found))

    # --- engines in place of pods ------------------------------------------------------------------

    async def start_engine(self, table: str, *extra: str, env: dict[str, str] | None = None) -> Any:
        """Start the engine of Table ``table`` with the credentials the operator made; its boto3 client."""
        secret = await self.wait_for(f"Secret {table}-credentials",
                                     lambda: self.get("secrets", f"{table}-credentials"))  # fmt: skip
        credentials = self.workdir / f"{table}.credentials"
        credentials.write_bytes(base64.b64decode(secret["data"]["credentials"]))
        data = self.workdir / f"{table}-data"
        data.mkdir(exist_ok=True)
        arguments = ("--auth", "sigv4", "--credentials", str(credentials), *extra)
        self.engines[table] = await asyncio.to_thread(
            start_engine, data, *arguments, port=self.ports[table], env=env
        )
        key_id = base64.b64decode(secret["data"]["AWS_ACCESS_KEY_ID"]).decode()
        secret_key = base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode()
        client = make_client(self.engines[table].endpoint, aws_access_key_id=key_id,
                             aws_secret_access_key=secret_key)  # fmt: skip
        self.clients[table] = client
        return client

    async def call(self, table: str, operation: str, **request: Any) -> Any:
        """A boto3 call to the engine of ``table``, in a thread."""
        return await asyncio.to_thread(getattr(self.clients[table], operation), **request)


class FolderVault:
    """A folder vault for the tests: its URL, its key (in a Secret body and in a key file)."""

    def __init__(self, root: Path, name: str = "primary", key_secret: str = "vault-key") -> None:
        self.name, self.key_secret = name, key_secret
        self.folder = root / f"vault-{name}"
        self.url = f"file://{self.folder}"
        self.secret = secrets.token_bytes(32)
        self.key_file = root / f"{name}.key"
        self.key_file.write_text(base64.b64encode(self.secret).decode() + "\n")
        self.key_file.chmod(0o600)

    def key_secret_body(self) -> dict[str, Any]:
        return secret_body(self.key_secret, {"vault.key": base64.b64encode(self.secret) + b"\n"})

    def body(self) -> dict[str, Any]:
        spec = {"url": self.url, "keySecretRef": {"name": self.key_secret}}
        return resource_body("BackupVault", self.name, spec)

    def engine_arguments(self) -> tuple[str, ...]:
        """What the operator's StatefulSet gives the engine, with this machine's key file path."""
        return ("--vault", self.url, "--vault-key-file", str(self.key_file))


ITEMS = [{"pk": {"S": f"k{i}"}, "v": {"S": "x" * 100}} for i in range(3)]


async def table_on_vault(
    harness: OperatorHarness, tmp_path: Path, *others: str, plurals: tuple[str, ...] = OPERATOR_PLURALS
) -> FolderVault:
    """A Ready folder vault, and an Active Table "orders" on it with three items (its engine started
    with the vault flags the operator's StatefulSet gives it).  ``others``: Tables the test makes
    later, which the operator finds engines for; ``plurals``: the kinds to wait for it to watch."""
    vault = FolderVault(tmp_path)
    harness.start_operator("orders", *others)
    await harness.operator_watching(plurals)
    await harness.create("secrets", vault.key_secret_body())
    await harness.create("backupvaults", vault.body())
    await harness.create("tables", table_body("orders", NAMESPACE, backupVaultRef={"name": "primary"}))
    statefulset = await harness.wait_for(
        "the StatefulSet", lambda: harness.get("statefulsets", "orders-engine")
    )
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--vault") : args.index("--vault") + 2] == ["--vault", vault.url]
    await harness.start_engine("orders", *vault.engine_arguments())
    await harness.wait_for_status("tables", "orders", phase="Active", Ready="True")
    for item in ITEMS:
        await harness.call("orders", "put_item", TableName="orders", Item=item)
    return vault



@pytest_asyncio.fixture
async def harness(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> AsyncIterator[OperatorHarness]:
    """The fake API (mark the module ``pytest.mark.kmock(cls=VersionedEmulator)``), ready for the operator."""
    serve_kubernetes(kmock)
    running = OperatorHarness(kmock, tmp_path)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        if os.environ.get("TK_OPERATOR_LOG"):
            sys.stderr.write(running.log.read_text())


# --- restores (the Restore controller's tests and the lifecycle test) -----------------------------


def restore_body(name: str, source: dict[str, Any], table_name: str, **target: Any) -> dict[str, Any]:
    return resource_body("Restore", name, {"source": source, "target": {"tableName": table_name, **target}})


async def restored(harness: OperatorHarness, vault: FolderVault, restore: str, table: str) -> dict[str, Any]:
    """Once the Restore made its target Table: start that Table's engine; the Restore's final status."""
    await harness.wait_for(f"Table {table}", lambda: harness.get("tables", table))
    await harness.start_engine(table, *vault.engine_arguments())
    return await harness.wait_for_status("restores", restore, phase="Completed", Ready="True")


async def deletion_recorded(vault: FolderVault) -> bool:
    """Whether the vault's archive of "orders" records its deletion (its engine shipped its last records)."""

    def recorded() -> bool:
        archive = PitrArchive(Vault(open_store(vault.url), VaultKey.from_secret(vault.secret)))
        found = (archive.settings(table_id) for table_id in archive.table_ids())
        return any(s is not None and s.table_name == "orders" and s.deleted_ms is not None for s in found)

    return await asyncio.to_thread(recorded)


def deleted_table_backup(vault: FolderVault) -> tuple[str, datetime]:
    """The id of the deleted "orders" table's ``$DeletedTableBackup`` (as ListBackups shows it) and the
    moment it was deleted, from the vault's archive."""
    archive = PitrArchive(Vault(open_store(vault.url), VaultKey.from_secret(vault.secret)))
    for table_id in archive.table_ids():
        settings = archive.settings(table_id)
        if settings is not None and settings.table_name == "orders" and settings.deleted_ms is not None:
            deleted_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=settings.deleted_ms)
            return deleted_table_backup_id(table_id, settings.deleted_ms), deleted_at
    raise AssertionError("no deleted orders table in the vault")
