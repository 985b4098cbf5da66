"""Rendering the chart with the real Helm library, and the restricted Pod Security Standard.

Helm runs in-process (helm-python-sdk binds Helm's Go SDK); no cluster is
involved, so ``lookup`` finds nothing and CRD-backed kinds are not checked by
Helm against an API server: the tests do that against the official schemas.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tablekeeper"
VALUES_ALL = Path(__file__).with_name("values-all.yaml")
RELEASE = "tk"
NAMESPACE = "tablekeeper"

# Kubernetes versions the objects must be valid in: the chart's minimum
# (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
OLDEST_KUBERNETES = "1.27.0"

KINDS = ("Table", "PitrConfig", "Backup", "BackupVault", "BackupPlan", "Restore")
PLURALS = ("tables", "pitrconfigs", "backups", "backupvaults", "backupplans", "restores")

# Everything off that can be: the chart then renders the operator alone.
VALUES_NONE: dict[str, Any] = {
    "crds": {"install": False},
    "peering": {"create": False},
    "serviceAccount": {"create": False},
    "rbac": {"create": False},
    "metrics": {"enabled": False},
    "grafanaDashboard": {"enabled": False},
}


def values_all() -> dict[str, Any]:
    """tests/chart/values-all.yaml: every option of the chart turned on."""
    loaded: dict[str, Any] = yaml.safe_load(VALUES_ALL.read_text())
    return loaded


# Value sets by name, so that tests can be parametrized and renders cached.
VALUE_SETS: dict[str, Any] = {"defaults": {}, "all-on": values_all(), "all-off": VALUES_NONE}


def render_manifests(values: Mapping[str, Any]) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would print it."""
    with helm_python.Chart.load(CHART) as chart:
        return chart.render(dict(values), name=RELEASE, namespace=NAMESPACE)


@functools.cache
def render(value_set: str) -> tuple[dict[str, Any], ...]:
    """The Kubernetes objects the chart renders with a named value set (NOTES.txt left out)."""
    return objects_of(render_manifests(VALUE_SETS[value_set]))


def objects_of(manifests: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    found: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        found.extend(document for document in yaml.safe_load_all(text) if document)
    return tuple(found)


def of_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def dashboard(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    config_map = one(objects, "ConfigMap")
    loaded: dict[str, Any] = json.loads(config_map["data"]["tablekeeper.json"])
    return loaded


# --- YAML as Kubernetes tools read it ------------------------------------------


class GoYamlLoader(yaml.SafeLoader):
    """PyYAML, reading booleans as Go's YAML 1.1 (kubectl, Helm, the API server's tools) does.

    PyYAML takes ``y``, ``Y``, ``n`` and ``N`` for strings; Go's yaml.v2, which
    sigs.k8s.io/yaml wraps, takes them for booleans.
    """

    bool_values = {**yaml.SafeLoader.bool_values, "y": True, "n": False}


GoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
    list("yYnNtTfFoO"),
)


# --- the "restricted" Pod Security Standard ----------------------------------
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ : the
# baseline controls plus the restricted ones, as the admission plugin applies
# them to a pod spec (the latest policy version).

ALLOWED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
})
ALLOWED_SELINUX_TYPES = frozenset({
    "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t",
})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """What in a pod spec breaks the restricted Pod Security Standard; empty when it complies."""
    problems: list[str] = []
    pod_context = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"spec.{field} is set")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            forbidden = sorted(kinds - ALLOWED_VOLUME_TYPES)
            problems.append(f"volume {volume['name']} is of a forbidden type {forbidden}")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not safe")
    problems.extend(_context_violations("spec.securityContext", pod_context))
    if pod_context.get("runAsUser") == 0:
        problems.append("spec.securityContext.runAsUser is 0")
    containers = [
        *(("containers", c) for c in pod.get("containers") or []),
        *(("initContainers", c) for c in pod.get("initContainers") or []),
        *(("ephemeralContainers", c) for c in pod.get("ephemeralContainers") or []),
    ]
    for group, container in containers:
        where = f"{group}[{container['name']}]"
        context = container.get("securityContext") or {}
        problems.extend(_context_violations(f"{where}.securityContext", context))
        if context.get("privileged"):
            problems.append(f"{where} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}.securityContext.allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where} does not drop ALL capabilities")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where} adds capabilities beyond NET_BIND_SERVICE")
        if context.get("procMount") not in (None, "Default"):
            problems.append(f"{where}.securityContext.procMount is not Default")
        if context.get("runAsUser") == 0:
            problems.append(f"{where}.securityContext.runAsUser is 0")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where} uses hostPort {port['hostPort']}")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{where} may run as root (runAsNonRoot is not true for it)")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where} has no RuntimeDefault or Localhost seccomp profile")
    return problems


def _context_violations(where: str, context: Mapping[str, Any]) -> list[str]:
    """The controls that apply alike to a pod's and a container's security context."""
    problems = []
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES:
        problems.append(f"{where}.seLinuxOptions.type {selinux['type']} is not allowed")
    if selinux.get("user") or selinux.get("role"):
        problems.append(f"{where}.seLinuxOptions sets a user or role")
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append(f"{where}.seccompProfile is Unconfined")
    if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append(f"{where}.appArmorProfile is Unconfined")
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        problems.append(f"{where}.windowsOptions.hostProcess is set")
    return problems
