"""The Argo CD health checks in the chart's README: one per kind, run in Lua 5.1 as Argo CD runs them."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart.support import CHART, KINDS

SCRIPT = (CHART / "docs" / "argocd-health.lua").read_text()


def _argocd_config_map() -> dict[str, Any]:
    readme = (CHART / "README.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL) if "name: argocd-cm" in b]
    assert len(blocks) == 1, "the README shows one argocd-cm ConfigMap"
    loaded: dict[str, Any] = yaml.safe_load(blocks[0])
    return loaded


def test_readme_has_a_health_check_for_every_kind() -> None:
    data = _argocd_config_map()["data"]
    assert set(data) == {f"resource.customizations.health.tablekeeper.io_{kind}" for kind in KINDS}
    for key, script in data.items():
        assert script == SCRIPT, f"{key} differs from docs/argocd-health.lua"


def test_readme_argocd_config_map_is_a_valid_config_map() -> None:
    kubernetes_validate.validate(_argocd_config_map(), kubernetes_validate.latest_version(), strict=True)


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """The script's verdict on ``obj``, run in Lua 5.1 (Argo CD's gopher-lua speaks 5.1)."""
    lua51 = pytest.importorskip("lupa.lua51", reason="lupa (a Lua runtime) runs the Argo CD health script")
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    check = runtime.eval(f"function(obj)\n{SCRIPT}\nend")
    result = check(runtime.table_from(obj, recursive=True))
    return result["status"], result["message"]


def _obj(generation: int = 2, observed: int | None = 2, conditions: list[dict[str, str]] | None = None,
         spec: dict[str, Any] | None = None, status: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "orders", "generation": generation}, "spec": spec or {}}
    if status:
        obj["status"] = {"conditions": conditions or []}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


def _condition(kind: str, status: str, message: str = "", reason: str = "Because") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def test_object_without_status_is_progressing() -> None:
    assert health(_obj(status=False))[0] == "Progressing"


def test_object_whose_generation_the_operator_has_not_seen_is_progressing() -> None:
    ready = [_condition("Ready", "True")]
    assert health(_obj(generation=3, observed=2, conditions=ready)) == (
        "Progressing", "Waiting for the operator to observe generation 3"
    )
    assert health(_obj(generation=3, observed=None, conditions=ready))[0] == "Progressing"


def test_ready_object_is_healthy() -> None:
    ready = [_condition("Ready", "True", "Table is ACTIVE")]
    assert health(_obj(conditions=ready)) == ("Healthy", "Table is ACTIVE")


def test_degraded_object_is_degraded_even_while_ready() -> None:
    conditions = [_condition("Ready", "True"), _condition("Degraded", "True", "vault unreachable")]
    assert health(_obj(conditions=conditions)) == ("Degraded", "vault unreachable")


def test_progressing_object_is_progressing_even_while_ready() -> None:
    conditions = [_condition("Ready", "True"), _condition("Progressing", "True", reason="Updating")]
    assert health(_obj(conditions=conditions)) == ("Progressing", "Updating")


def test_object_not_ready_and_not_progressing_is_degraded() -> None:
    conditions = [
        _condition("Ready", "False", "engine pod crash-looping"),
        _condition("Progressing", "False"),
    ]
    assert health(_obj(conditions=conditions)) == ("Degraded", "engine pod crash-looping")


def test_object_without_a_ready_condition_yet_is_progressing() -> None:
    assert health(_obj(conditions=[]))[0] == "Progressing"


def test_suspended_backup_plan_is_suspended() -> None:
    conditions = [_condition("Ready", "True")]
    assert health(_obj(conditions=conditions, spec={"suspend": True}))[0] == "Suspended"
    assert health(_obj(conditions=conditions, spec={"suspend": False}))[0] == "Healthy"
