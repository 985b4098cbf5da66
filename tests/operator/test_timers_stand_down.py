"""Status timers stand down when a handler reported while they were asking the engine.

kopf hands a timer a live body. A PitrConfig or Backup timer that read the
engine while a handler wrote a newer verdict (PITR turned off, a refusal)
must not put its older view over that verdict.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, TypeVar

import jsonpatch
import kopf
import pytest

from tablekeeper.controllers.backups import BackupController
from tablekeeper.controllers.engine_client import EngineBackup, EnginePitr
from tablekeeper.controllers.pitr import PitrController, PitrOutcome
from tablekeeper.controllers.tables import TableSettings
from tablekeeper.controllers.verdicts import merge_status, moved_on, seen
from tests.operator.conftest import table_body

NS = "shop"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)  # no operator here to post them


class Objects:
    """The API server's objects, as ``Kube.get`` answers them."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = {(body["kind"], body["metadata"]["name"]): body for body in bodies}

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        plural_to_kind = {"tables": "Table", "pitrconfigs": "PitrConfig", "backups": "Backup"}
        found = self.bodies.get((plural_to_kind[kind.plural], name))
        return copy.deepcopy(found)


class Engine:
    """An engine whose answer comes after a handler (``meanwhile``) wrote to the API server."""

    def __init__(self, meanwhile: Any) -> None:
        self.meanwhile = meanwhile

    def describe_pitr(self) -> EnginePitr:
        self.meanwhile()
        return EnginePitr(True, 35, NOW, NOW)

    def describe_backup(self, arn: str) -> EngineBackup:
        self.meanwhile()
        return EngineBackup(arn, "nightly", "AVAILABLE", NOW)


def _ready(reason: str) -> list[dict[str, Any]]:
    since = "2026-03-01T11:00:00Z"
    return [{"type": "Ready", "status": "True", "reason": reason, "lastTransitionTime": since},
            {"type": "Progressing", "status": "False", "reason": "AsExpected",
             "lastTransitionTime": since}]


def _pitr_config() -> dict[str, Any]:
    return {
        "apiVersion": "tablekeeper.io/v1alpha1", "kind": "PitrConfig",
        "metadata": {"name": "orders-pitr", "namespace": NS, "uid": "u1", "generation": 1},
        "spec": {"tableRef": {"name": "orders"}, "vaultRef": {"name": "vault"}},
        "status": {"phase": "Enabled", "conditions": _ready(PitrOutcome.ENABLED)},
    }


def _backup() -> dict[str, Any]:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders/backup/01"
    return {
        "apiVersion": "tablekeeper.io/v1alpha1", "kind": "Backup",
        "metadata": {"name": "nightly", "namespace": NS, "uid": "u2", "generation": 1},
        "spec": {"tableRef": {"name": "orders"}, "vaultRef": {"name": "vault"}},
        "status": {"backupArn": arn, "backupStatus": "CREATING", "conditions": _ready("Creating")},
    }


C = TypeVar("C", PitrController, BackupController)


def written(patch: kopf.Patch, live: dict[str, Any]) -> dict[str, Any]:
    """The status the API server holds after kopf applies ``patch`` with ``live`` as the object it
    knows (kopf's own JSON patch of its merge part and functions; its resourceVersion test the
    fake objects here always pass)."""
    ops = patch.as_json_patch(kopf.Body(copy.deepcopy(live))) if patch else []
    return dict(jsonpatch.apply_patch(live, ops).get("status") or {})


def _controller(kind: type[C], objects: Objects, engine: Engine) -> C:
    controller = kind(TableSettings(), kube_factory=lambda: objects, clock=lambda: NOW)  # type: ignore[arg-type,return-value]
    controller.engine_of = lambda table: engine  # type: ignore[method-assign,return-value]
    return controller


def test_the_pitr_timer_reports_the_window_when_nothing_happened_meanwhile() -> None:
    config = _pitr_config()
    objects = Objects(table_body("orders", NS), config)
    patch = kopf.Patch()
    controller = _controller(PitrController, objects, Engine(lambda: None))
    live = copy.deepcopy(config)
    controller.refresh(kopf.Body(live), patch)
    assert written(patch, live)["earliestRestorableTime"] == "2026-03-01T12:00:00Z"


def test_the_pitr_timer_stands_down_when_pitr_was_turned_off_during_its_engine_call() -> None:
    config = _pitr_config()
    objects = Objects(table_body("orders", NS), config)

    def turned_off() -> None:  # the update handler's pass, while the timer waits for the engine
        config["metadata"]["generation"] = 2
        config["spec"]["enabled"] = False
        config["status"] = {"phase": "Disabled", "conditions": _ready(PitrOutcome.DISABLED)}

    patch = kopf.Patch()
    _controller(PitrController, objects, Engine(turned_off)).refresh(kopf.Body(copy.deepcopy(config)), patch)
    assert not patch


def test_the_pitr_timer_writes_nothing_when_a_verdict_lands_after_its_check_but_before_its_patch() -> None:
    config = _pitr_config()
    objects = Objects(table_body("orders", NS), config)
    live = copy.deepcopy(config)
    patch = kopf.Patch()
    _controller(PitrController, objects, Engine(lambda: None)).refresh(kopf.Body(live), patch)
    # The update handler's verdict reaches kopf's live body before kopf applies the timer's patch.
    live["metadata"]["generation"] = 2
    live["status"] = {"phase": "Disabled", "conditions": _ready(PitrOutcome.DISABLED)}
    assert written(patch, live) == live["status"]


def test_the_backup_timer_reports_the_finished_backup_when_nothing_happened_meanwhile() -> None:
    backup = _backup()
    objects = Objects(table_body("orders", NS), backup)
    live = copy.deepcopy(backup)
    patch = kopf.Patch()
    _controller(BackupController, objects, Engine(lambda: None)).poll(kopf.Body(live), patch)
    assert written(patch, live)["backupStatus"] == "AVAILABLE"


def test_the_backup_timer_stands_down_when_a_handler_reported_during_its_engine_call() -> None:
    backup = _backup()
    objects = Objects(table_body("orders", NS), backup)

    def deleting() -> None:
        backup["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"

    patch = kopf.Patch()
    _controller(BackupController, objects, Engine(deleting)).poll(kopf.Body(copy.deepcopy(backup)), patch)
    assert not patch


def test_what_a_timer_starts_from_is_a_copy_the_live_body_cannot_change() -> None:
    live = {"metadata": {"generation": 1}, "status": {"conditions": _ready("Active")}}
    start = seen(live)
    live["status"]["conditions"][0]["reason"] = "ChangeRefused"
    assert start["status"]["conditions"][0]["reason"] == "Active"
    assert moved_on(start, live)


def test_a_status_merge_replaces_values_merges_mappings_and_removes_what_is_none() -> None:
    status = {"phase": "Creating", "window": {"earliest": "a", "latest": "b"}, "gone": 1, "flat": "x"}
    merge_status(status, {"phase": "Active", "window": {"latest": "c"}, "gone": None, "flat": {"k": None}})
    assert status == {"phase": "Active", "window": {"earliest": "a", "latest": "c"}, "flat": {}}
