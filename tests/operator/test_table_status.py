"""A Table's status after each kind of pass: conditions, phase and events, decided without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tablekeeper.controllers.tables import (
    Outcome,
    name_change,
    status_after,
    timer_may_refresh,
    volume_grows,
)
from tablekeeper.controllers.verdicts import moved_on
from tablekeeper.resources.table import TableStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_table_whose_engine_is_starting_is_creating_and_not_ready() -> None:
    status, _ = status_after(Outcome.ENGINE_STARTING, "waiting", {}, 1, T0)
    assert status["phase"] == "Creating"
    assert conditions(status) == {
        "Ready": ("False", "EngineStarting"), "Progressing": ("True", "EngineStarting"),
        "Degraded": ("False", "AsExpected"),
    }  # fmt: skip
    TableStatus.model_validate(status)


def test_an_active_table_is_ready_with_its_generation_observed() -> None:
    status, _ = status_after(Outcome.ACTIVE, "ok", {}, 7, T0)
    assert status["phase"] == "Active" and status["observedGeneration"] == 7
    assert all(c["observedGeneration"] == 7 for c in status["conditions"])
    assert conditions(status)["Ready"] == ("True", "Active")


def test_ready_turning_true_is_one_normal_event() -> None:
    starting, _ = status_after(Outcome.ENGINE_STARTING, "waiting", {}, 1, T0)
    _, changes = status_after(Outcome.ACTIVE, "ok", starting, 1, T1)
    ready = [t for t in changes if t.type == "Ready"]
    assert [(t.event_type, t.reason) for t in ready] == [("Normal", "Active")]


def test_a_repeated_outcome_keeps_transition_times_and_posts_no_event() -> None:
    first, _ = status_after(Outcome.ACTIVE, "ok", {}, 1, T0)
    second, changes = status_after(Outcome.ACTIVE, "ok", first, 1, T1)
    assert changes == ()
    assert [c["lastTransitionTime"] for c in second["conditions"]] == ["2026-03-01T12:00:00Z"] * 3


def test_a_refused_change_degrades_the_table_but_leaves_it_ready() -> None:
    active, _ = status_after(Outcome.ACTIVE, "ok", {}, 1, T0)
    refused, changes = status_after(Outcome.CHANGE_REFUSED, "keySchema is immutable", active, 2, T1)
    assert refused["phase"] == "Failed"
    assert conditions(refused)["Ready"] == ("True", "Active")
    assert conditions(refused)["Degraded"] == ("True", "ChangeRefused")
    assert [(t.type, t.event_type) for t in changes] == [("Degraded", "Warning")]


def test_an_unreachable_engine_of_an_active_table_keeps_the_phase_and_loses_ready() -> None:
    active, _ = status_after(Outcome.ACTIVE, "ok", {}, 1, T0)
    down, changes = status_after(Outcome.ENGINE_UNAVAILABLE, "connection refused", active, 1, T1)
    assert down["phase"] == "Active"
    assert conditions(down)["Ready"] == ("False", "EngineUnavailable")
    assert {t.type: t.event_type for t in changes}["Ready"] == "Warning"


def test_every_outcome_makes_a_status_the_crd_allows() -> None:
    for outcome in Outcome:
        status, _ = status_after(outcome, "m", {}, 1, T0)
        TableStatus.model_validate(status)


def test_a_table_renamed_after_creation_is_refused_by_its_recorded_arn() -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/Orders"
    assert name_change(arn, "Orders") is None
    assert name_change(None, "Anything") is None
    assert "immutable" in (name_change(arn, "Orders2") or "")


def test_a_volume_only_grows() -> None:
    assert volume_grows("1Gi", "2Gi")
    assert not volume_grows("2Gi", "1Gi")
    assert not volume_grows("1024Mi", "1Gi")
    assert not volume_grows(None, "2Gi")


def test_the_status_timer_waits_for_a_pass_to_finish_and_leaves_refusals_alone() -> None:
    assert not timer_may_refresh({})
    starting, _ = status_after(Outcome.ENGINE_STARTING, "waiting", {}, 1, T0)
    assert not timer_may_refresh(starting)
    active, _ = status_after(Outcome.ACTIVE, "ok", starting, 1, T0)
    assert timer_may_refresh(active)
    refused, _ = status_after(Outcome.CHANGE_REFUSED, "no", active, 2, T0)
    assert not timer_may_refresh(refused)
    down, _ = status_after(Outcome.ENGINE_UNAVAILABLE, "down", active, 1, T0)
    assert timer_may_refresh(down)


def test_the_status_timer_stands_down_when_the_object_moved_on_during_its_engine_call() -> None:
    active = {"conditions": [{"type": "Ready", "status": "True", "reason": "Active"}]}
    body = {"metadata": {"generation": 1}, "status": active}
    assert not moved_on(body, {"metadata": {"generation": 1}, "status": active})
    assert moved_on(body, {"metadata": {"generation": 2}, "status": active})  # a new spec came
    refused = {"conditions": [{"type": "Ready", "status": "False", "reason": "ChangeRefused"}]}
    assert moved_on(body, {"metadata": {"generation": 1}, "status": refused})  # a handler reported
    assert moved_on(body, {"metadata": {"generation": 1, "deletionTimestamp": "2026-03-01T00:00:00Z"}})
    assert moved_on(body, None)
