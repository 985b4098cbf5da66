"""RBAC: the operator gets what it uses, by name, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from tests.chart.support import NAMESPACE, PLURALS, of_kind, render

Grant = tuple[str, str, str]  # (API group, resource, verb)


def _grants(*groups: tuple[str, Iterable[str], Iterable[str]]) -> frozenset[Grant]:
    return frozenset((group, r, v) for group, resources, verbs in groups for r in resources for v in verbs)


READ = ("get", "list", "watch")
OWN = (*READ, "create", "update", "patch", "delete")

# Everything the operator may do in the namespaces it serves (DESIGN: what the
# operator does in the cluster). Nothing outside this list may be granted.
NAMESPACED_ALLOWED = _grants(
    ("tablekeeper.io", PLURALS, (*READ, "patch", "update")),
    ("tablekeeper.io", [f"{p}/status" for p in PLURALS], ("get", "patch", "update")),
    ("tablekeeper.io", ("backups", "tables"), ("create", "delete")),
    ("apps", ("statefulsets",), OWN),
    ("", ("services",), OWN),
    ("", ("secrets",), ("get", "create", "update", "patch", "delete")),
    ("", ("pods",), READ),
    ("", ("persistentvolumeclaims",), (*READ, "patch", "delete")),
    ("", ("events",), ("create",)),
    ("events.k8s.io", ("events",), ("create",)),
)
NAMESPACED_PEERING = _grants(("kopf.dev", ("kopfpeerings",), ("get", "list", "watch", "patch")))
# What kopf reads cluster-wide in either mode.
CLUSTER_ALLOWED = _grants(
    ("apiextensions.k8s.io", ("customresourcedefinitions",), READ),
    ("", ("namespaces",), ("list", "watch")),
)
CLUSTER_PEERING = _grants(("kopf.dev", ("clusterkopfpeerings",), ("get", "list", "watch", "patch")))

# Without these the operator cannot do its job: least privilege, not no privilege.
REQUIRED = _grants(
    ("tablekeeper.io", PLURALS, ("get", "list", "watch", "patch")),
    ("tablekeeper.io", [f"{p}/status" for p in PLURALS], ("patch",)),
    ("tablekeeper.io", ("backups", "tables"), ("create",)),
    ("apps", ("statefulsets",), ("create", "get", "patch", "delete")),
    ("", ("services", "secrets"), ("create", "get", "delete")),
    ("", ("pods",), ("list",)),
    ("", ("persistentvolumeclaims",), ("get", "patch", "delete")),
    ("", ("events",), ("create",)),
)


def _granted(roles: Iterable[Mapping[str, Any]]) -> frozenset[Grant]:
    return frozenset(
        (group, resource, verb)
        for role in roles
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    )


def _rules(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [rule for o in objects if o["kind"] in ("Role", "ClusterRole") for rule in o["rules"]]


@pytest.mark.parametrize("value_set", ["defaults", "all-on"])
def test_no_rule_uses_a_wildcard(value_set: str) -> None:
    for rule in _rules(render(value_set)):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in entry for entry in rule.get(field, [])), rule
        assert "nonResourceURLs" not in rule


@pytest.mark.parametrize("value_set", ["defaults", "all-on"])
def test_no_rule_escalates(value_set: str) -> None:
    """Nothing that lets the operator grant itself more: no RBAC objects, no bind/escalate/impersonate."""
    for group, resource, verb in _granted(_roles(render(value_set))):
        assert group != "rbac.authorization.k8s.io", (group, resource, verb)
        assert verb not in ("bind", "escalate", "impersonate", "deletecollection"), (group, resource, verb)
        assert resource not in ("pods/exec", "pods/attach", "serviceaccounts/token", "nodes"), resource


def test_cluster_wide_operator_gets_exactly_the_listed_grants() -> None:
    objects = render("defaults")
    assert of_kind(objects, "Role") == []
    granted = _granted(of_kind(objects, "ClusterRole"))
    assert granted == NAMESPACED_ALLOWED | CLUSTER_ALLOWED | CLUSTER_PEERING
    assert granted >= REQUIRED


def test_namespaced_operator_gets_roles_in_the_watched_namespaces_only() -> None:
    objects = render("all-on")
    roles = of_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["billing", "shop"]
    for role in roles:
        granted = _granted([role])
        assert granted == NAMESPACED_ALLOWED | NAMESPACED_PEERING
        assert granted >= REQUIRED
    # Cluster-wide: only what kopf reads; no Secrets, StatefulSets or custom resources anywhere else.
    assert _granted(of_kind(objects, "ClusterRole")) == CLUSTER_ALLOWED


@pytest.mark.parametrize("value_set", ["defaults", "all-on"])
def test_every_role_is_bound_to_the_operator_service_account(value_set: str) -> None:
    objects = render(value_set)
    (account,) = of_kind(objects, "ServiceAccount")
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in _roles(objects)}
    bound = set()
    for binding in of_kind(objects, "RoleBinding") + of_kind(objects, "ClusterRoleBinding"):
        reference = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if reference["kind"] == "Role" else None
        bound.add((reference["kind"], namespace, reference["name"]))
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
        ]
    assert bound == roles


def _roles(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [o for o in objects if o["kind"] in ("Role", "ClusterRole")]


def test_operator_service_account_is_the_one_its_pod_uses() -> None:
    for value_set in ("defaults", "all-on"):
        objects = render(value_set)
        (account,) = of_kind(objects, "ServiceAccount")
        (deployment,) = of_kind(objects, "Deployment")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
