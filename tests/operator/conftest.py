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

import itertools
import uuid
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import yaml

from tablekeeper.resources.table import Table

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
    """

    _versions = itertools.count(2)

    async def _handle(self, request: kmock.Request) -> Any:
        if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            version = str(next(self._versions))
            if isinstance(request.data, dict):
                request.data.setdefault("metadata", {})["resourceVersion"] = version
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
