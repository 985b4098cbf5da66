"""A small Kubernetes client for the controllers: plain dicts in and out, errors as kopf's.

The official client's typed API (kubernetes 37 validates bodies into pydantic
models and back) is bypassed on purpose: the builders produce plain dicts as
the API takes them, and any server, a fake included, returns plain JSON.  Its
``ApiClient`` is kept for what it is good at: configuration, authentication,
TLS and connection pooling.

Error contract, per the STYLE rules (AlreadyExists is success, Conflict means
try again):

* ``create`` returns False when the object exists (409), and never changes it;
* ``list`` returns the items found, possibly none;
* ``get`` returns None and ``delete`` False when the object is not there (404);
* ``patch`` returns None when the object is not there;
* 409 elsewhere, 403 (permissions may yet be granted), 429, 5xx and
  connection failures raise ``kopf.TemporaryError``; any other refusal
  (400, 422: an object the API server will never take) ``kopf.PermanentError``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import kopf
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
RETRY_DELAY: Final = 5.0
TIMEOUT: Final = (5.0, 30.0)  # connect, read


@dataclass(frozen=True)
class Kind:
    """A resource as its URL spells it: ``v1`` or ``apps/v1``, and the plural."""

    api_version: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        collection = f"{prefix}/namespaces/{namespace}/{self.plural}"
        return collection if name is None else f"{collection}/{name}"


SECRETS: Final = Kind("v1", "secrets")
SERVICES: Final = Kind("v1", "services")
PVCS: Final = Kind("v1", "persistentvolumeclaims")
STATEFULSETS: Final = Kind("apps/v1", "statefulsets")


class Kube:
    """Create, read, patch and delete namespaced objects as dicts."""

    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self._api = api_client

    @classmethod
    def from_environment(cls) -> Kube:
        """In a pod, its service account; elsewhere $KUBECONFIG or ~/.kube/config (as kopf logs in)."""
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()
        return cls(k8s_client.ApiClient())

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        verb = f"read {kind.plural} {namespace}/{name}"
        return self._call("GET", kind.path(namespace, name), None, JSON, verb, missing_ok=True)

    def list(self, kind: Kind, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace``; ``label_selector`` is a filter the server may apply
        (a fake may not: callers that depend on it check the labels again)."""
        query = f"?{urlencode({'labelSelector': label_selector})}" if label_selector else ""
        verb = f"list {kind.plural} in {namespace}"
        found = self._call("GET", kind.path(namespace) + query, None, JSON, verb) or {}
        return list(found.get("items") or ())

    def create(self, kind: Kind, obj: dict[str, Any]) -> bool:
        """Create ``obj``; False when one of its name exists already (it is left as it is)."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        verb = f"create {kind.plural} {namespace}/{name}"
        return self._call("POST", kind.path(namespace), obj, JSON, verb, exists_ok=True) is not None

    def patch(
        self, kind: Kind, namespace: str, name: str, patch: Any, content_type: str = MERGE_PATCH
    ) -> dict[str, Any] | None:
        verb = f"patch {kind.plural} {namespace}/{name}"
        return self._call("PATCH", kind.path(namespace, name), patch, content_type, verb, missing_ok=True)

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete the object (in the background); False when it was not there."""
        verb = f"delete {kind.plural} {namespace}/{name}"
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        return self._call("DELETE", kind.path(namespace, name), body, JSON, verb, missing_ok=True) is not None

    def _call(
        self, method: str, path: str, body: Any, content_type: str, verb: str,
        missing_ok: bool = False, exists_ok: bool = False,
    ) -> dict[str, Any] | None:
        headers = {"Accept": JSON, "Content-Type": content_type}
        _, url, headers, body, _ = self._api.param_serialize(
            method=method, resource_path=path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        try:
            response = self._api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=TIMEOUT
            )
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError, k8s_client.ApiException) as error:
            raise kopf.TemporaryError(f"{verb}: {error}", delay=RETRY_DELAY) from error
        status = response.status
        if 200 <= status < 300:
            return json.loads(data) if data else {}
        if (status == 404 and missing_ok) or (status == 409 and exists_ok):
            return None
        message = _message(data) or response.reason
        if status in (403, 404, 409, 429) or status >= 500:
            raise kopf.TemporaryError(f"{verb}: {status} {message}", delay=RETRY_DELAY)
        raise kopf.PermanentError(f"{verb}: {status} {message}")


def _message(data: bytes | None) -> str:
    try:
        return str(json.loads(data or b"{}").get("message", ""))
    except (ValueError, AttributeError):
        return (data or b"").decode(errors="replace")[:200]


class UsesKube:
    """A controller's API client, built from its ``kube_factory`` on first use (kopf's handlers run
    once the operator has logged in; building it earlier would be too soon)."""

    kube_factory: Callable[[], Kube]

    @functools.cached_property
    def kube(self) -> Kube:
        return self.kube_factory()
