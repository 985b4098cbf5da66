"""A deletion that comes back with a stale body changes nothing.

kopf runs a deletion handler at least once: a watch replay or a restart can
hand it the body of an object that is already gone, or whose name a new
object (another uid) has taken since. Acting on it would delete the new
object's engine and children, or turn off what a new PitrConfig set.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import kopf
import pytest

from tablekeeper.controllers.pitr import PitrController
from tablekeeper.controllers.tables import TableController, TableSettings
from tablekeeper.controllers.verdicts import outlived
from tests.operator.conftest import table_body

NS = "shop"
LOG = logging.getLogger("test")


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)  # no operator here to post them


class Objects:
    """The API server's objects by plural and name; records every deletion asked of it."""

    def __init__(self, *bodies: tuple[str, dict[str, Any]]) -> None:
        self.bodies = {(plural, body["metadata"]["name"]): body for plural, body in bodies}
        self.deleted: list[tuple[str, str]] = []

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.bodies.get((kind.plural, name)))

    def list(self, kind: Any, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(b) for (plural, _), b in self.bodies.items() if plural == kind.plural]

    def delete(self, kind: Any, namespace: str, name: str) -> bool:
        self.deleted.append((kind.plural, name))
        return True


def _deleting(body: dict[str, Any]) -> dict[str, Any]:
    stale = copy.deepcopy(body)
    stale["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    return stale


def _pitr_config(uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "tablekeeper.io/v1alpha1", "kind": "PitrConfig",
        "metadata": {"name": "orders-pitr", "namespace": NS, "uid": uid, "generation": 1},
        "spec": {"tableRef": {"name": "orders"}, "vaultRef": {"name": "vault"}, "enabled": True},
        "status": {"phase": "Enabled"},
    }  # fmt: skip


def _no_engine(table: Any) -> Any:
    raise AssertionError("a stale deletion reached the engine")


def test_a_table_deletion_removes_the_engines_children_while_its_table_is_there() -> None:
    table = table_body("orders", NS)
    objects = Objects(("tables", _deleting(table)))
    TableController(TableSettings(), kube_factory=lambda: objects).delete(  # type: ignore[arg-type,return-value]
        kopf.Body(_deleting(table)), kopf.Patch(), 0, LOG
    )
    assert ("statefulsets", "orders-engine") in objects.deleted


def test_a_stale_table_deletion_leaves_a_new_table_of_the_same_name_alone() -> None:
    old, new = table_body("orders", NS), table_body("orders", NS)  # two uids
    objects = Objects(("tables", new))
    patch = kopf.Patch()
    TableController(TableSettings(), kube_factory=lambda: objects).delete(  # type: ignore[arg-type,return-value]
        kopf.Body(_deleting(old)), patch, 0, LOG
    )
    assert objects.deleted == [] and not patch


def test_a_table_deletion_whose_table_is_gone_does_nothing() -> None:
    objects = Objects()
    TableController(TableSettings(), kube_factory=lambda: objects).delete(  # type: ignore[arg-type,return-value]
        kopf.Body(_deleting(table_body("orders", NS))), kopf.Patch(), 0, LOG
    )
    assert objects.deleted == []


@pytest.mark.parametrize("live", [None, "u2"], ids=["gone", "replaced"])
def test_a_stale_pitr_config_deletion_leaves_the_engine_alone(live: str | None) -> None:
    objects = Objects(("tables", table_body("orders", NS)),
                      *([("pitrconfigs", _pitr_config(live))] if live else []))  # fmt: skip
    controller = PitrController(TableSettings(), kube_factory=lambda: objects)  # type: ignore[arg-type,return-value]
    controller.engine_of = _no_engine  # type: ignore[method-assign]
    patch = kopf.Patch()
    controller.delete(kopf.Body(_deleting(_pitr_config("u1"))), patch, 0, LOG)
    assert not patch


def test_outlived_compares_the_uid_under_the_name() -> None:
    body = {"metadata": {"name": "a", "uid": "u1"}}
    assert not outlived(body, {"metadata": {"name": "a", "uid": "u1"}})
    assert outlived(body, {"metadata": {"name": "a", "uid": "u2"}})
    assert outlived(body, None)
