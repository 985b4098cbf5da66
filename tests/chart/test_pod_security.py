"""The operator pod meets the "restricted" Pod Security Standard, and the checker catches breaches."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.chart.support import VALUE_SETS, objects_of, one, render, render_manifests, restricted_violations


def _pod(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    pod: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_operator_pod_is_restricted(value_set: str) -> None:
    assert restricted_violations(_pod(render(value_set))) == []


def test_operator_pod_stays_restricted_with_another_user() -> None:
    values = {"podSecurityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}}
    assert restricted_violations(_pod(objects_of(render_manifests(values)))) == []


def _breach(change: str) -> list[str]:
    pod = copy.deepcopy(_pod(render("defaults")))
    container = pod["containers"][0]
    context = container["securityContext"]
    if change == "privileged":
        context["privileged"] = True
    elif change == "escalation":
        context["allowPrivilegeEscalation"] = True
    elif change == "capabilities":
        context["capabilities"] = {"drop": ["ALL"], "add": ["SYS_ADMIN"]}
    elif change == "keeps capabilities":
        del context["capabilities"]
    elif change == "root":
        del pod["securityContext"]["runAsNonRoot"]
        del context["runAsNonRoot"]
    elif change == "uid 0":
        context["runAsUser"] = 0
    elif change == "unconfined":
        context["seccompProfile"] = {"type": "Unconfined"}
    elif change == "no seccomp":
        del pod["securityContext"]["seccompProfile"]
        del context["seccompProfile"]
    elif change == "host network":
        pod["hostNetwork"] = True
    elif change == "host path":
        pod["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}})
    elif change == "host port":
        container["ports"][0]["hostPort"] = 9090
    elif change == "sysctl":
        pod["securityContext"]["sysctls"] = [{"name": "kernel.msgmax", "value": "1"}]
    return restricted_violations(pod)


@pytest.mark.parametrize(
    "change",
    [
        "privileged", "escalation", "capabilities", "keeps capabilities", "root", "uid 0", "unconfined",
        "no seccomp", "host network", "host path", "host port", "sysctl",
    ],
)
def test_checker_catches_a_breach(change: str) -> None:
    assert _breach(change) != []


def test_large_user_ids_render_as_integers() -> None:
    """Helm reads numbers as floats: 1000000000 would print as 1e+09 without a cast."""
    big = 1000000000
    values = {"podSecurityContext": {"runAsUser": big, "runAsGroup": big, "fsGroup": big}}
    context = _pod(objects_of(render_manifests(values)))["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (big, big, big)
