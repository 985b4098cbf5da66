"""The BackupPlan controller's decisions, with plain values and a fixed clock: no cluster, no fake."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tablekeeper.controllers.naming import PLAN_LABEL, child_name, run_now_child_name
from tablekeeper.controllers.plans import (
    Child,
    Closing,
    NewBackup,
    Outcome,
    PlanFacts,
    PlanInfo,
    backup_body,
    backup_state,
    closing_patch,
    decide,
    pass_due,
    plan_status,
    read_child,
    rule_anchor,
    select_tables,
)
from tablekeeper.controllers.retention import BackupFacts, BackupStatus, DeleteReason, WindowState
from tablekeeper.controllers.schedule import RunReason
from tablekeeper.resources.backup import BACKUP_NAME_PATTERN, Backup
from tablekeeper.resources.plan import BackupPlan, BackupPlanStatus, TableSelection

CREATED = datetime(2026, 3, 1, 2, 50, tzinfo=UTC)
AT_3 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
AT_3_NEXT_DAY = AT_3 + timedelta(days=1)
NAMESPACE = "shop"
PLAN_UID = "0b6c6c2e-0000-4000-8000-000000000001"


def plan(status: dict[str, Any] | None = None, suspend: bool = False, **rule: Any) -> BackupPlan:
    body: dict[str, Any] = {
        "metadata": {"name": "nightly", "namespace": NAMESPACE, "labels": {"team": "shop"}},
        "spec": {
            "rules": [
                {"name": "daily", "schedule": "0 3 * * *", "targetVaultRef": {"name": "vault"}, **rule}
            ],
            "selection": {"tableNames": ["orders"]},
            "suspend": suspend,
        },
    }
    if status is not None:
        body["status"] = status
    return BackupPlan.model_validate(body)


def facts_of(backup_plan: BackupPlan, run_now: str | None = None) -> PlanFacts:
    return PlanFacts("nightly", backup_plan, CREATED, run_now)


def recorded(last: datetime | None, next_: datetime | None, handled: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "daily"}
    if last:
        rule["lastRunTime"] = last.isoformat()
    if next_:
        rule["nextRunTime"] = next_.isoformat()
    return {"rules": [rule], **({"handledRunNow": handled} if handled else {})}


def child(name: str, status: BackupStatus, created: datetime, table: str = "orders", **more: Any) -> Child:
    return Child(BackupFacts(name, "daily", created, status, table, **more))


# --- which Tables a plan selects --------------------------------------------------------------------


def table(name: str, deleting: bool = False, **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if deleting:
        metadata["deletionTimestamp"] = "2026-03-01T00:00:00Z"
    return {"metadata": metadata}


def selection(**wire: Any) -> TableSelection:
    return TableSelection.model_validate(wire)


def test_a_plan_selects_tables_by_name_and_by_label_sorted() -> None:
    chosen = selection(tableNames=["orders"], labelSelector={"matchLabels": {"tier": "gold"}})
    tables = [table("orders"), table("carts", tier="gold"), table("logs", tier="bronze")]
    assert select_tables(chosen, tables).tables == ("carts", "orders")


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ({"key": "tier", "operator": "In", "values": ["gold", "silver"]}, ("carts", "users")),
        ({"key": "tier", "operator": "NotIn", "values": ["gold"]}, ("logs", "users")),
        ({"key": "tier", "operator": "Exists"}, ("carts", "users")),
        ({"key": "tier", "operator": "DoesNotExist"}, ("logs",)),
    ],
)
def test_a_label_selector_expression_selects_by_its_operator(
    expression: dict[str, Any], selected: tuple[str, ...]
) -> None:
    tables = [table("carts", tier="gold"), table("users", tier="silver"), table("logs")]
    assert (
        select_tables(selection(labelSelector={"matchExpressions": [expression]}), tables).tables == selected
    )


def test_match_labels_and_expressions_must_all_hold() -> None:
    chosen = selection(
        labelSelector={
            "matchLabels": {"app": "shop"},
            "matchExpressions": [{"key": "tier", "operator": "Exists"}],
        }
    )
    tables = [table("a", app="shop", tier="gold"), table("b", app="shop"), table("c", tier="gold")]
    assert select_tables(chosen, tables).tables == ("a",)


def test_a_named_table_that_does_not_exist_is_reported_missing() -> None:
    chosen = select_tables(selection(tableNames=["orders", "ghost"]), [table("orders")])
    assert chosen.tables == ("orders",) and chosen.missing == ("ghost",)


def test_a_table_being_deleted_is_not_backed_up() -> None:
    chosen = select_tables(selection(tableNames=["orders"]), [table("orders", deleting=True)])
    assert chosen.tables == () and chosen.missing == ("orders",)


# --- reading children -------------------------------------------------------------------------------


def backup_object(
    name: str, plan_name: str = "nightly", rule: str = "daily", **status: Any
) -> dict[str, Any]:
    new = NewBackup(name, rule, "orders", AT_3)
    body = backup_body(new, plan_name, NAMESPACE, PLAN_UID, "vault")
    body["status"] = status
    return body


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ({}, BackupStatus.PENDING),
        ({"phase": "Creating"}, BackupStatus.CREATING),
        ({"backupStatus": "AVAILABLE"}, BackupStatus.AVAILABLE),
        ({"phase": "Failed"}, BackupStatus.FAILED),
        (
            {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False", "reason": "Expired"}]},
            BackupStatus.EXPIRED,
        ),
        (
            {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False", "reason": "Cancelled"}]},
            BackupStatus.CANCELLED,
        ),
        ({"phase": "Deleting"}, BackupStatus.DELETING),
    ],
)
def test_a_backups_state_is_read_from_its_phase_and_reason(
    status: dict[str, Any], state: BackupStatus
) -> None:
    assert backup_state(status) is state


def test_a_child_counts_from_its_scheduled_time_not_its_creation() -> None:
    body = backup_object("c", phase="Available")
    body["metadata"]["creationTimestamp"] = "2026-03-01T03:07:00Z"
    found = read_child(body, "nightly", PLAN_UID, ["daily"], AT_3_NEXT_DAY)
    assert found is not None
    assert found.facts.created == AT_3 and found.facts.status is BackupStatus.AVAILABLE
    assert found.facts.table == "orders" and not found.has_plan_info


def test_another_plans_backup_or_a_removed_rules_is_not_a_child() -> None:
    assert read_child(backup_object("x", plan_name="weekly"), "nightly", PLAN_UID, ["daily"], AT_3) is None
    assert read_child(backup_object("x", rule="hourly"), "nightly", PLAN_UID, ["daily"], AT_3) is None


def test_a_backup_of_a_deleted_namesake_plan_is_not_a_child() -> None:
    assert read_child(backup_object("x"), "nightly", "another-uid", ["daily"], AT_3) is None


# --- the children a plan makes ----------------------------------------------------------------------


def test_a_child_has_the_plans_labels_for_children_and_never_its_own() -> None:
    body = backup_body(
        NewBackup("nightly-daily-orders-202603010300", "daily", "orders", AT_3),
        "nightly",
        NAMESPACE,
        PLAN_UID,
        "vault",
    )
    labels = body["metadata"]["labels"]
    assert labels[PLAN_LABEL] == "nightly" and "team" not in labels
    assert body["metadata"]["annotations"]["tablekeeper.io/scheduled-time"] == "2026-03-01T03:00:00Z"


def test_a_child_is_owned_by_its_plan_without_blocking_the_plans_deletion() -> None:
    body = backup_body(NewBackup("n", "daily", "orders", AT_3), "nightly", NAMESPACE, PLAN_UID, "vault")
    (owner,) = body["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "tablekeeper.io/v1alpha1",
        "kind": "BackupPlan",
        "name": "nightly",
        "uid": PLAN_UID,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def test_a_childs_spec_is_a_valid_backup_into_the_rules_vault() -> None:
    name = child_name("nightly", "daily", AT_3, "orders")
    body = backup_body(NewBackup(name, "daily", "orders", AT_3), "nightly", NAMESPACE, PLAN_UID, "vault")
    backup = Backup.model_validate(body)
    assert backup.spec.table_ref.name == "orders" and backup.spec.vault_ref.name == "vault"
    assert backup.spec.backup_name == name and re.match(BACKUP_NAME_PATTERN, name)
    assert backup.spec.deletion_policy == "Delete"


def test_an_expired_child_is_marked_failed_with_the_reason() -> None:
    patch = closing_patch(Closing("c", "daily", WindowState.EXPIRED), (), AT_3)
    assert patch["status"]["phase"] == "Failed"
    (ready,) = patch["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "Expired")
    assert backup_state(patch["status"]) is BackupStatus.EXPIRED


# --- scheduled runs ---------------------------------------------------------------------------------


def test_a_new_plan_before_its_first_run_creates_nothing_and_records_the_next_run() -> None:
    decision = decide(facts_of(plan()), ["orders"], [], CREATED + timedelta(minutes=1))
    assert decision.create == () and decision.next_run == AT_3
    assert decision.rules[0].run.reason is RunReason.NOT_DUE


def test_a_due_run_creates_one_child_per_table_named_for_its_scheduled_time() -> None:
    status = recorded(None, AT_3)
    decision = decide(facts_of(plan(status)), ["carts", "orders"], [], AT_3 + timedelta(seconds=30))
    assert [b.name for b in decision.create] == [
        "nightly-daily-carts-202603010300",
        "nightly-daily-orders-202603010300",
    ]
    assert {b.scheduled for b in decision.create} == {AT_3}
    assert decision.rules[0].run.last_run == AT_3 and decision.next_run == AT_3_NEXT_DAY
    assert decision.rules[0].last_backup == "nightly-daily-orders-202603010300"


def test_a_second_pass_after_a_run_creates_nothing() -> None:
    status = recorded(AT_3, AT_3_NEXT_DAY)
    started = [child("nightly-daily-orders-202603010300", BackupStatus.PENDING, AT_3)]
    decision = decide(facts_of(plan(status)), ["orders"], started, AT_3 + timedelta(minutes=5))
    assert decision.create == () and decision.in_flight == 1


def test_a_run_missed_while_the_operator_was_down_is_reported_not_started() -> None:
    status = recorded(None, AT_3)
    decision = decide(facts_of(plan(status)), ["orders"], [], AT_3 + timedelta(hours=2))
    assert decision.create == ()
    assert decision.rules[0].run.missed == (AT_3,) and decision.rules[0].run.last_run == AT_3


def test_a_rule_added_to_an_existing_plan_reports_no_missed_runs() -> None:
    status = {"rules": [{"name": "other", "nextRunTime": AT_3_NEXT_DAY.isoformat()}]}
    decision = decide(facts_of(plan(status)), ["orders"], [], AT_3 + timedelta(days=3, hours=2))
    assert decision.rules[0].run.missed == () and decision.create == ()


def test_a_suspended_plan_starts_no_scheduled_run_and_shows_no_next_run() -> None:
    status = recorded(None, AT_3)
    decision = decide(facts_of(plan(status, suspend=True)), ["orders"], [], AT_3 + timedelta(seconds=30))
    assert decision.create == () and decision.next_run is None
    assert decision.rules[0].run.reason is RunReason.SUSPENDED


def test_after_a_suspension_the_runs_it_held_back_are_not_reported_missed() -> None:
    status = recorded(None, None)
    later = AT_3 + timedelta(days=5, hours=2)
    decision = decide(facts_of(plan(status)), ["orders"], [], later)
    assert decision.rules[0].run.missed == () and decision.create == ()
    assert decision.next_run == AT_3 + timedelta(days=6)


def test_a_rule_anchor_waits_for_the_recorded_next_run() -> None:
    assert rule_anchor(AT_3, True, CREATED, AT_3 - timedelta(hours=1)) == AT_3 - timedelta(hours=1)
    assert rule_anchor(AT_3, True, CREATED, AT_3 + timedelta(hours=1)) == AT_3 - timedelta(seconds=1)
    assert rule_anchor(None, False, CREATED, AT_3) == CREATED
    assert rule_anchor(None, True, CREATED, AT_3) == AT_3


# --- run-now ----------------------------------------------------------------------------------------


def test_run_now_creates_a_child_per_table_named_after_the_token() -> None:
    decision = decide(facts_of(plan(recorded(None, AT_3)), run_now="t1"), ["orders"], [], CREATED)
    (new,) = decision.create
    assert new.name == run_now_child_name("nightly", "daily", "t1", "orders")
    assert new.on_demand and new.scheduled == CREATED and decision.handled_run_now == "t1"
    assert decision.next_run == AT_3  # the schedule is untouched


def test_a_handled_run_now_token_runs_nothing_again() -> None:
    status = recorded(None, AT_3, handled="t1")
    decision = decide(facts_of(plan(status), run_now="t1"), ["orders"], [], CREATED)
    assert decision.create == () and decision.handled_run_now == "t1"


def test_run_now_is_honoured_while_suspended() -> None:
    status = recorded(None, None)
    decision = decide(facts_of(plan(status, suspend=True), run_now="t2"), ["orders"], [], CREATED)
    assert len(decision.create) == 1 and decision.create[0].on_demand


# --- windows ----------------------------------------------------------------------------------------


def test_a_child_not_started_within_its_start_window_is_expired() -> None:
    waiting = child("c", BackupStatus.PENDING, AT_3)
    decision = decide(
        facts_of(plan(recorded(AT_3, AT_3_NEXT_DAY))), ["orders"], [waiting], AT_3 + timedelta(minutes=60)
    )
    assert decision.close == (Closing("c", "daily", WindowState.EXPIRED),)
    assert decision.failing == ("daily/orders",)


def test_a_child_still_running_past_its_completion_window_is_cancelled() -> None:
    running = child("c", BackupStatus.CREATING, AT_3, started=AT_3 + timedelta(minutes=1))
    facts = facts_of(plan(recorded(AT_3, AT_3_NEXT_DAY), completionWindowMinutes=120))
    decision = decide(facts, ["orders"], [running], AT_3 + timedelta(minutes=121))
    assert decision.close == (Closing("c", "daily", WindowState.CANCEL),)


def test_a_child_within_its_windows_is_left_alone_and_wakes_the_plan_at_its_deadline() -> None:
    waiting = child("c", BackupStatus.PENDING, AT_3)
    now = AT_3 + timedelta(minutes=59, seconds=30)
    decision = decide(facts_of(plan(recorded(AT_3, AT_3_NEXT_DAY))), ["orders"], [waiting], now)
    assert decision.close == () and decision.wake_at == AT_3 + timedelta(minutes=60)


# --- retention --------------------------------------------------------------------------------------


def test_keep_last_deletes_the_older_available_backups_of_each_table() -> None:
    children = [
        child("old", BackupStatus.AVAILABLE, AT_3),
        child("new", BackupStatus.AVAILABLE, AT_3_NEXT_DAY),
        child("other", BackupStatus.AVAILABLE, AT_3, table="carts"),
    ]
    facts = facts_of(plan(recorded(AT_3_NEXT_DAY, AT_3_NEXT_DAY + timedelta(days=1)), keepLast=1))
    decision = decide(facts, ["carts", "orders"], children, AT_3_NEXT_DAY + timedelta(hours=1))
    assert [(d.name, d.reason) for d in decision.delete] == [("old", DeleteReason.BEYOND_KEEP_LAST)]


def test_keep_last_does_not_count_a_backup_still_being_made() -> None:
    children = [
        child("old", BackupStatus.AVAILABLE, AT_3),
        child("new", BackupStatus.CREATING, AT_3_NEXT_DAY),
    ]
    facts = facts_of(plan(recorded(AT_3_NEXT_DAY, AT_3_NEXT_DAY + timedelta(days=1)), keepLast=1))
    decision = decide(facts, ["orders"], children, AT_3_NEXT_DAY + timedelta(minutes=5))
    assert decision.delete == ()


def test_delete_after_days_deletes_a_backup_once_its_lifetime_is_over() -> None:
    children = [
        child("old", BackupStatus.AVAILABLE, AT_3),
        child("new", BackupStatus.AVAILABLE, AT_3_NEXT_DAY),
    ]
    facts = facts_of(
        plan(recorded(AT_3_NEXT_DAY, AT_3_NEXT_DAY + timedelta(days=1)), lifecycle={"deleteAfterDays": 1})
    )
    decision = decide(facts, ["orders"], children, AT_3_NEXT_DAY + timedelta(minutes=1))
    assert [(d.name, d.reason) for d in decision.delete] == [("old", DeleteReason.EXPIRED)]


def test_a_child_found_without_plan_info_gets_it_with_its_expiry() -> None:
    bare = Child(BackupFacts("c", "daily", AT_3, BackupStatus.PENDING, "orders"), has_plan_info=False)
    facts = facts_of(plan(recorded(AT_3, AT_3_NEXT_DAY), lifecycle={"deleteAfterDays": 7}))
    decision = decide(facts, ["orders"], [bare], AT_3 + timedelta(minutes=1))
    assert decision.plan_info == (PlanInfo("c", "daily", AT_3 + timedelta(days=7)),)


# --- when the timer makes a pass --------------------------------------------------------------------


def test_the_timer_makes_a_pass_at_the_wake_up_time_and_not_before() -> None:
    status = {"phase": "Active", "observedGeneration": 1}
    assert not pass_due(AT_3, status, 1, None, AT_3 - timedelta(seconds=1))
    assert pass_due(AT_3, status, 1, None, AT_3)
    assert pass_due(None, status, 1, None, AT_3)  # after a restart


def test_the_timer_makes_a_pass_for_a_new_run_now_token_at_once() -> None:
    status = {"phase": "Active", "handledRunNow": "t1"}
    assert pass_due(AT_3, status, 1, "t2", AT_3 - timedelta(hours=1))
    assert not pass_due(AT_3, status, 1, "t1", AT_3 - timedelta(hours=1))


def test_the_timer_leaves_a_refused_spec_alone_until_it_changes() -> None:
    status = {"phase": "Failed", "observedGeneration": 3}
    assert not pass_due(None, status, 3, "t9", AT_3)
    assert pass_due(None, status, 4, None, AT_3)


def test_the_wake_up_is_never_later_than_the_max_interval() -> None:
    decision = decide(facts_of(plan(recorded(None, AT_3))), ["orders"], [], CREATED, timedelta(seconds=60))
    assert decision.wake_at == CREATED + timedelta(seconds=60)


# --- status -----------------------------------------------------------------------------------------


def conditions_of(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_an_active_plan_with_a_backup_running_is_ready_and_progressing() -> None:
    decision = decide(facts_of(plan(recorded(None, AT_3))), ["orders"], [], AT_3 + timedelta(seconds=5))
    status, changes = plan_status(Outcome.ACTIVE, "1 table", {}, 2, AT_3, decision)
    BackupPlanStatus.model_validate(status)
    assert status["phase"] == "Active" and status["nextRunTime"] == "2026-03-02T03:00:00Z"
    assert conditions_of(status) == {
        "Ready": ("True", "Active"),
        "Progressing": ("True", "BackupsRunning"),
        "Degraded": ("False", "AsExpected"),
    }
    assert status["rules"][0]["lastRunTime"] == "2026-03-01T03:00:00Z"
    assert {c.type for c in changes} == {"Ready", "Progressing", "Degraded"}


def test_a_suspended_plan_has_the_suspended_phase() -> None:
    decision = decide(facts_of(plan(recorded(None, None), suspend=True)), ["orders"], [], AT_3)
    status, _ = plan_status(Outcome.SUSPENDED, "suspended", {}, 1, AT_3, decision)
    assert status["phase"] == "Suspended" and status["nextRunTime"] is None


def test_a_missing_table_or_a_failed_last_backup_degrades_the_plan() -> None:
    failed = [child("c", BackupStatus.FAILED, AT_3)]
    decision = decide(
        facts_of(plan(recorded(AT_3, AT_3_NEXT_DAY))), ["orders"], failed, AT_3 + timedelta(hours=1)
    )
    status, changes = plan_status(Outcome.ACTIVE, "", {}, 1, AT_3, decision, missing=("ghost",))
    assert conditions_of(status)["Degraded"] == ("True", "TablesMissing")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert "ghost" in degraded["message"] and "daily/orders" in degraded["message"]
    assert next(c for c in changes if c.type == "Degraded").event_type == "Warning"


def test_a_newer_available_backup_clears_a_failed_one() -> None:
    children = [child("a", BackupStatus.FAILED, AT_3), child("b", BackupStatus.AVAILABLE, AT_3_NEXT_DAY)]
    facts = facts_of(plan(recorded(AT_3_NEXT_DAY, AT_3_NEXT_DAY + timedelta(days=1))))
    assert decide(facts, ["orders"], children, AT_3_NEXT_DAY + timedelta(hours=1)).failing == ()


def test_an_invalid_spec_fails_the_plan() -> None:
    status, _ = plan_status(Outcome.INVALID_SPEC, "bad schedule", {}, 1, AT_3)
    assert status["phase"] == "Failed"
    assert conditions_of(status)["Ready"] == ("False", "InvalidSpec")
    assert conditions_of(status)["Degraded"] == ("True", "InvalidSpec")
