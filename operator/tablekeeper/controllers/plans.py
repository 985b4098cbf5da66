"""The BackupPlan controller: scheduled Backups of the selected Tables, their windows and their lifecycle.

Handlers (``register``) are thin.  A pass reads the plan, the Tables it
selects and the Backups it made (its *children*), calls ``decide`` (pure: the
clock is an argument) and applies what it returns:

1. per rule, the scheduled run due now (``schedule.due_runs``): one child per
   selected Table, named ``<plan>-<rule>-<table>-<YYYYMMDDHHMM>`` after the
   scheduled instant in UTC (``naming.child_name``), so a retry after a crash
   finds the same child: AlreadyExists is success;
2. a new ``tablekeeper.io/run-now: <token>`` annotation: one child per rule and
   Table now, named after the token (``naming.run_now_child_name``), also while
   the plan is suspended; the token is recorded in ``status.handledRunNow``;
3. children still in flight past their start window (never started) are marked
   Expired, past their completion window Cancelled: both are marked (phase
   Failed, Ready False with that reason) and deleted, which stops the backup
   (its controller removes whatever was written, deletionPolicy Delete);
4. retention (``retention.retention``, deleteAfterDays and keepLast, each
   table's backups apart) deletes the rest that have had their time;
5. the status: per rule lastRunTime/nextRunTime/lastBackup, the earliest
   nextRunTime, conditions Ready/Progressing/Degraded, phase
   Active/Suspended/Failed; events for each backup created, missed runs,
   expired and cancelled backups, retention deletions and condition changes.

What a child is:

* labels ``naming.child_labels`` only, never the plan's own labels (a plan
  labelled like the Tables it selects would otherwise select its own Backups
  in someone's selector);
* annotation ``tablekeeper.io/scheduled-time``: the instant it was scheduled
  for (an on-demand run: when its token was first acted on); windows and
  retention count from it;
* spec: tableRef, vaultRef (the rule's targetVaultRef), backupName (the
  child's name: a DNS label is a valid DynamoDB backup name), deletionPolicy
  Delete, so that retention's deletions remove the backup from the vault;
* status.plan (plan and rule) and status.expiresAt (scheduled time plus
  deleteAfterDays: when retention deletes it), written through the status
  subresource right after creation and again on any child found without them;
* an ownerReference to the plan (controller, not blocking the owner's
  deletion).  Deleting a plan must not delete its backups, as deleting an AWS
  Backup plan keeps its recovery points: the plan's delete handler (kopf's
  finalizer) first switches every child to deletionPolicy Retain, so the
  garbage collector removes the Backup objects and the backups stay in the
  vault, where ``tablekeeper backup list --vault`` finds them
  (``kubectl delete --cascade=orphan`` keeps the objects as well).  A
  *foreground* cascading delete races the handler: use the default.

Timing: kopf leaves annotations under its own storage prefix (``tablekeeper.io``)
out of the diff that starts update handlers, so a run-now annotation is seen
by the timer, not by an update handler.  The timer looks at the plan's body
every ``tick`` seconds (no API call) and makes a pass only when one is due
(``pass_due``): a new run-now token, or the wake-up time of the last pass: the
earliest of the next scheduled run, the next window deadline or lifecycle
expiry of a child, and ``max_interval`` after that pass.

Children of a rule that was removed from the plan are left alone: nothing
decides about them any more (their status.expiresAt tells when they were due
to go).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import kopf
import pydantic

from tablekeeper.controllers import conditions
from tablekeeper.controllers.backups import BACKUPS
from tablekeeper.controllers.conditions import Condition, Transition
from tablekeeper.controllers.kube import Kind, Kube, UsesKube
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.controllers.naming import (
    PLAN_LABEL,
    RULE_LABEL,
    child_labels,
    child_name,
    label_value,
    run_now_child_name,
)
from tablekeeper.controllers.retention import (
    UNSUCCESSFUL,
    BackupFacts,
    BackupStatus,
    Deletion,
    RetentionPolicy,
    WindowState,
    retention,
    window_deadline,
    window_state,
)
from tablekeeper.controllers.schedule import RunDecision, Schedule, due_runs
from tablekeeper.controllers.verdicts import FALSE, TRUE, Clock, utc_now
from tablekeeper.resources.common import GROUP, VERSION
from tablekeeper.resources.plan import BackupPlan, BackupPlanStatus, BackupRule, PlanPhase, TableSelection

KIND: Final = "BackupPlan"
PLURAL: Final = "backupplans"
API_VERSION: Final = f"{GROUP}/{VERSION}"
TABLES: Final = Kind(API_VERSION, "tables")
RUN_NOW_ANNOTATION: Final = f"{GROUP}/run-now"
SCHEDULED_ANNOTATION: Final = f"{GROUP}/scheduled-time"
WAKE_MEMO: Final = "tablekeeper_plan_wake_at"  # in kopf's per-object memo

QUIET: Final = "AsExpected"
IN_FLIGHT: Final = frozenset({BackupStatus.PENDING, BackupStatus.CREATING})



# --- what the API says, as facts (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class Selected:
    """The Tables a plan backs up now, and the names it asks for that do not exist."""

    tables: tuple[str, ...]
    missing: tuple[str, ...] = ()


def select_tables(selection: TableSelection, tables: Iterable[Mapping[str, Any]]) -> Selected:
    """The Tables of ``tables`` (API objects) that ``selection`` picks, by name; those being deleted are
    left out.  Names it lists that are not there (or are going) are ``missing``."""
    present: dict[str, Mapping[str, str]] = {}
    for table in tables:
        metadata = table.get("metadata") or {}
        if not metadata.get("deletionTimestamp") and metadata.get("name"):
            present[str(metadata["name"])] = metadata.get("labels") or {}
    chosen = sorted(name for name, labels in present.items() if selection.selects(name, labels))
    missing = sorted(set(selection.table_names or ()) - set(present))
    return Selected(tuple(chosen), tuple(missing))


@dataclass(frozen=True)
class Child:
    """A Backup the plan made, as retention and the windows see it."""

    facts: BackupFacts
    has_plan_info: bool = True  # status.plan is set
    deletion_policy: str = "Delete"
    conditions: tuple[Condition, ...] = ()

    @property
    def name(self) -> str:
        return self.facts.name


def backup_state(status: Mapping[str, Any], deleting: bool = False) -> BackupStatus:
    """A Backup's state for retention, from its status (phase, backupStatus, and the reason it failed)."""
    phase, state = status.get("phase"), status.get("backupStatus")
    if deleting or phase == "Deleting" or state == "DELETED":
        return BackupStatus.DELETING
    if phase == "Failed" or state == "FAILED":
        ready = conditions.find(conditions.conditions_from(status.get("conditions")), conditions.READY)
        reason = ready.reason if ready is not None else ""
        return {"Expired": BackupStatus.EXPIRED, "Cancelled": BackupStatus.CANCELLED}.get(
            reason, BackupStatus.FAILED
        )
    if phase == "Available" or state == "AVAILABLE":
        return BackupStatus.AVAILABLE
    if phase == "Creating" or state == "CREATING" or status.get("startedAt"):
        return BackupStatus.CREATING
    return BackupStatus.PENDING


def read_child(
    obj: Mapping[str, Any], plan: str, plan_uid: str | None, rules: Iterable[str], now: datetime
) -> Child | None:
    """``obj`` as a child of the plan called ``plan``, or None when it is not one of this plan's
    current rules' children (another plan's, or a removed rule's: a fake API filters no labels)."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(PLAN_LABEL) != label_value(plan):
        return None
    owners = [o.get("uid") for o in metadata.get("ownerReferences") or () if o.get("kind") == KIND]
    if plan_uid and owners and plan_uid not in owners:
        return None  # a namesake plan's, deleted and made again
    rule = next((r for r in rules if label_value(r) == labels.get(RULE_LABEL)), None)
    if rule is None:
        return None
    status = obj.get("status") or {}
    annotations = metadata.get("annotations") or {}
    created = _time(annotations.get(SCHEDULED_ANNOTATION)) or _time(metadata.get("creationTimestamp")) or now
    facts = BackupFacts(
        name=str(metadata.get("name")),
        rule=rule,
        created=created,
        status=backup_state(status, deleting=bool(metadata.get("deletionTimestamp"))),
        table=str(((obj.get("spec") or {}).get("tableRef") or {}).get("name", "")),
        started=_time(status.get("startedAt")),
        completed=_time(status.get("completedAt")),
    )
    return Child(
        facts,
        has_plan_info=bool(status.get("plan")),
        deletion_policy=str((obj.get("spec") or {}).get("deletionPolicy", "Delete")),
        conditions=conditions.conditions_from(status.get("conditions")),
    )


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return conditions.parse_time(str(text))
    except ValueError:
        return None


# --- the decision (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanFacts:
    """What ``decide`` needs of the plan object."""

    name: str
    plan: BackupPlan
    created: datetime | None = None  # metadata.creationTimestamp (a fake API sets none)
    run_now: str | None = None  # the run-now annotation

    @property
    def status(self) -> BackupPlanStatus:
        return self.plan.status or BackupPlanStatus()


@dataclass(frozen=True)
class NewBackup:
    """A child to create."""

    name: str
    rule: str
    table: str
    scheduled: datetime  # the scheduled instant, or now for an on-demand run
    on_demand: bool = False


@dataclass(frozen=True)
class Closing:
    """An in-flight child that outran a window: marked and deleted."""

    name: str
    rule: str
    state: WindowState  # EXPIRED (never started) or CANCEL (did not finish)

    @property
    def reason(self) -> str:
        return "Expired" if self.state is WindowState.EXPIRED else "Cancelled"


@dataclass(frozen=True)
class PlanInfo:
    """status.plan and status.expiresAt for a child."""

    name: str
    rule: str
    expires_at: datetime | None


@dataclass(frozen=True)
class RuleRun:
    """One rule's decision and the status it leaves."""

    name: str
    run: RunDecision
    next_run: datetime | None  # None while suspended
    last_backup: str | None


@dataclass(frozen=True)
class PlanDecision:
    create: tuple[NewBackup, ...] = ()
    close: tuple[Closing, ...] = ()
    delete: tuple[Deletion, ...] = ()
    plan_info: tuple[PlanInfo, ...] = ()  # children found without status.plan
    rules: tuple[RuleRun, ...] = ()
    handled_run_now: str | None = None
    in_flight: int = 0  # children started or waiting to, after this pass
    failing: tuple[str, ...] = ()  # "<rule>/<table>" whose newest backup failed
    kept_as_last: tuple[str, ...] = ()  # past deleteAfterDays, kept as the only restorable backup
    wake_at: datetime | None = None  # when the next pass is due

    @property
    def next_run(self) -> datetime | None:
        return min((r.next_run for r in self.rules if r.next_run is not None), default=None)


def rule_anchor(
    recorded_next: datetime | None, has_status: bool, plan_created: datetime | None, now: datetime
) -> datetime:
    """The instant after which a rule's scheduled runs count (``due_runs``'s ``created``).

    A new plan's rules count from the plan's creation.  A rule seen before
    counts from just before the next run recorded for it, once that has come
    (no run between the last one and that one was due), else from now (a
    schedule changed meanwhile may fire sooner than the recorded run: its
    runs count from the change).  A rule without a recorded next run (added
    to an existing plan, or after a suspension) counts from now: a rule added
    today has missed nothing, and a suspension's runs are not reported as
    missed.
    """
    if recorded_next is not None:
        return min(recorded_next - timedelta(seconds=1), now)
    if has_status or plan_created is None:
        return now
    return min(plan_created, now)


def decide(
    facts: PlanFacts, tables: Sequence[str], children: Sequence[Child], now: datetime,
    max_interval: timedelta = timedelta(seconds=60),
) -> PlanDecision:  # fmt: skip
    """Everything a pass does at ``now`` for the plan, its selected ``tables`` and its ``children``."""
    token = facts.run_now if facts.run_now != facts.status.handled_run_now else None
    parts = [_decide_rule(facts, rule, tables, children, now, token) for rule in facts.plan.spec.rules]
    wakes = [w for part in parts for w in part.wakes if w > now]
    handled = token if any(part.run.run.run_now for part in parts) else facts.status.handled_run_now
    return PlanDecision(
        create=tuple(b for part in parts for b in part.create),
        close=tuple(c for part in parts for c in part.close),
        delete=tuple(d for part in parts for d in part.delete),
        plan_info=tuple(i for part in parts for i in part.plan_info),
        rules=tuple(part.run for part in parts),
        handled_run_now=handled,
        in_flight=sum(part.in_flight for part in parts),
        failing=tuple(f for part in parts for f in part.failing),
        kept_as_last=tuple(k for part in parts for k in part.kept_as_last),
        wake_at=min([*wakes, now + max_interval]),
    )


@dataclass(frozen=True)
class _RulePart:
    """One rule's share of a plan's decision."""

    run: RuleRun
    create: tuple[NewBackup, ...]
    close: tuple[Closing, ...]
    delete: tuple[Deletion, ...]
    plan_info: tuple[PlanInfo, ...]
    kept_as_last: tuple[str, ...]
    failing: tuple[str, ...]
    in_flight: int
    wakes: tuple[datetime, ...]


def _decide_rule(
    facts: PlanFacts, rule: BackupRule, tables: Sequence[str], children: Sequence[Child], now: datetime,
    token: str | None,
) -> _RulePart:  # fmt: skip
    spec, status = facts.plan.spec, facts.status
    start_window = timedelta(minutes=rule.start_window_minutes)
    completion_window = timedelta(minutes=rule.completion_window_minutes)
    mine = [c for c in children if c.facts.rule == rule.name]
    close = []
    for child in mine:
        state = window_state(child.facts, start_window, completion_window, now)
        if state is not WindowState.OK:
            close.append(Closing(child.name, rule.name, state))
    closed = {c.name for c in close}
    live = [c for c in mine if c.name not in closed]
    running = [c for c in live if c.facts.status in IN_FLIGHT]

    recorded = status.rule(rule.name)
    last_run = recorded.last_run_time if recorded else None
    anchor = rule_anchor(recorded.next_run_time if recorded else None, bool(status.rules), facts.created, now)
    schedule = Schedule(rule.schedule, rule.time_zone)
    run = due_runs(
        schedule,
        last_run,
        anchor,
        now,
        start_window,
        suspended=spec.suspend,
        in_progress=bool(running),
        run_now=token,
        handled_run_now=status.handled_run_now,
    )
    create: list[NewBackup] = []
    if run.start is not None:
        create += [NewBackup(child_name(facts.name, rule.name, run.start, t), rule.name, t, run.start)
                   for t in tables]  # fmt: skip
    if run.run_now:
        create += [NewBackup(run_now_child_name(facts.name, rule.name, run.run_now, t), rule.name, t, now,
                             on_demand=True) for t in tables]  # fmt: skip

    kept = retention([c.facts for c in live], _policy(rule), now)
    doomed = {d.name for d in kept.delete}
    remaining = [c for c in live if c.name not in doomed]
    upcoming = None if spec.suspend else run.next_run
    last_backup = create[-1].name if create else (recorded.last_backup if recorded else None)
    wakes = [upcoming] if upcoming else []
    wakes += [w for c in remaining if (w := _wake(c.facts, rule, start_window, completion_window))]
    wakes += [b.scheduled + start_window for b in create]
    return _RulePart(
        run=RuleRun(rule.name, run, upcoming, last_backup),
        create=tuple(create),
        close=tuple(close),
        delete=kept.delete,
        plan_info=tuple(
            PlanInfo(c.name, rule.name, _expires(rule, c.facts.created))
            for c in remaining
            if not c.has_plan_info
        ),
        kept_as_last=kept.kept_as_last,
        failing=tuple(_failing(rule.name, [*remaining, *_as_closed(mine, closed)])),
        in_flight=len(running) + len(create),
        wakes=tuple(wakes),
    )


def _as_closed(children: Sequence[Child], closed: set[str]) -> list[Child]:
    """The children being closed, as the failures they become."""
    failed = []
    for child in children:
        if child.name in closed:
            state = BackupStatus.EXPIRED if child.facts.started is None else BackupStatus.CANCELLED
            failed.append(Child(_with_status(child.facts, state), child.has_plan_info))
    return failed


def _with_status(facts: BackupFacts, status: BackupStatus) -> BackupFacts:
    return BackupFacts(facts.name, facts.rule, facts.created, status, facts.table, facts.started,
                       facts.completed, facts.protected)  # fmt: skip


def _policy(rule: BackupRule) -> RetentionPolicy:
    days = rule.lifecycle.delete_after_days if rule.lifecycle else None
    return RetentionPolicy(delete_after_days=days, keep_last=rule.keep_last)


def _expires(rule: BackupRule, created: datetime) -> datetime | None:
    return created + timedelta(days=rule.lifecycle.delete_after_days) if rule.lifecycle else None


def _wake(facts: BackupFacts, rule: BackupRule, start: timedelta, completion: timedelta) -> datetime | None:
    """When something next happens to a child: its window closes, or its lifecycle ends."""
    deadline = window_deadline(facts, start, completion)
    return deadline if deadline is not None else _expires(rule, facts.created)


def _failing(rule: str, children: Sequence[Child]) -> list[str]:
    """``<rule>/<table>`` for each table whose newest finished backup of the rule is unsuccessful."""
    newest: dict[str, BackupFacts] = {}
    for child in children:
        if child.facts.status in UNSUCCESSFUL or child.facts.status is BackupStatus.AVAILABLE:
            best = newest.get(child.facts.table)
            if best is None or (child.facts.created, child.name) > (best.created, best.name):
                newest[child.facts.table] = child.facts
    return [f"{rule}/{table}" for table, facts in sorted(newest.items()) if facts.status in UNSUCCESSFUL]


def pass_due(
    wake_at: datetime | None,
    status: Mapping[str, Any],
    generation: int | None,
    run_now: str | None,
    now: datetime,
) -> bool:
    """Whether the timer makes a pass now: a new run-now token, or the last pass's wake-up time has come
    (none yet: after a restart).  A plan refused for its spec waits for a new spec."""
    if status.get("phase") == PlanPhase.FAILED and status.get("observedGeneration") == generation:
        return False
    if run_now and run_now != status.get("handledRunNow"):
        return True
    return wake_at is None or now >= wake_at


# --- the status (pure) -----------------------------------------------------------------------------


class Outcome(StrEnum):
    INVALID_SPEC = "InvalidSpec"
    ACTIVE = "Active"
    SUSPENDED = "Suspended"


def plan_status(
    outcome: Outcome,
    message: str,
    previous: Mapping[str, Any],
    generation: int | None,
    now: datetime,
    decision: PlanDecision | None = None,
    missing: Sequence[str] = (),
) -> tuple[dict[str, Any], tuple[Transition, ...]]:
    """The status fields a pass sets on top of ``previous``, and the condition transitions."""
    old = conditions.conditions_from(previous.get("conditions"))
    if outcome is Outcome.INVALID_SPEC:
        ready, progressing, degraded = (FALSE, outcome, message), (FALSE, QUIET, ""), (TRUE, outcome, message)
        phase = PlanPhase.FAILED
    else:
        ready = (TRUE, outcome, message)
        running = decision.in_flight if decision else 0
        progressing = (
            (TRUE, "BackupsRunning", f"{running} backups in progress") if running else (FALSE, QUIET, "")
        )
        problems = []
        if missing:
            problems.append(("TablesMissing", f"no Table called {', '.join(missing)}"))
        if decision and decision.failing:
            problems.append(("BackupFailed", f"the last backup failed for {', '.join(decision.failing)}"))
        degraded = (
            (TRUE, problems[0][0], "; ".join(p[1] for p in problems)) if problems else (FALSE, QUIET, "")
        )
        phase = PlanPhase.SUSPENDED if outcome is Outcome.SUSPENDED else PlanPhase.ACTIVE
    new = old
    for kind, (value, reason, text) in ((conditions.READY, ready), (conditions.PROGRESSING, progressing),
                                        (conditions.DEGRADED, degraded)):  # fmt: skip
        condition = Condition(kind, value, str(reason), text, observed_generation=generation)
        new = conditions.set_condition(new, condition, now)
    fields = conditions.status_fields(generation, new, phase.value)
    if decision is not None:
        fields["rules"] = [_rule_status(r) for r in decision.rules]
        fields["nextRunTime"] = _format(decision.next_run)
        fields["handledRunNow"] = decision.handled_run_now
    return fields, conditions.transitions(old, new)


def _rule_status(rule: RuleRun) -> dict[str, Any]:
    return {
        "name": rule.name,
        "lastRunTime": _format(rule.run.last_run),
        "nextRunTime": _format(rule.next_run),
        "lastBackup": rule.last_backup,
    }


def _format(value: datetime | None) -> str | None:
    return conditions.format_time(value) if value is not None else None


# --- the objects built (pure) ----------------------------------------------------------------------


def backup_body(
    new: NewBackup, plan: str, namespace: str, plan_uid: str | None, vault: str
) -> dict[str, Any]:
    """The Backup object for ``new``: the plan's child, labelled for it, never with the plan's labels."""
    metadata: dict[str, Any] = {
        "name": new.name,
        "namespace": namespace,
        "labels": child_labels(plan, new.rule, new.table),
        "annotations": {SCHEDULED_ANNOTATION: conditions.format_time(new.scheduled)},
    }
    if plan_uid:
        metadata["ownerReferences"] = [{
            "apiVersion": API_VERSION, "kind": KIND, "name": plan, "uid": plan_uid,
            "controller": True, "blockOwnerDeletion": False,
        }]  # fmt: skip
    return {
        "apiVersion": API_VERSION,
        "kind": "Backup",
        "metadata": metadata,
        "spec": {
            "tableRef": {"name": new.table},
            "vaultRef": {"name": vault},
            "backupName": new.name,
            "deletionPolicy": "Delete",
        },
    }


def plan_info_patch(info: PlanInfo, plan: str) -> dict[str, Any]:
    """The status patch naming the plan and rule that made a child, and when it expires."""
    return {"status": {"plan": {"name": plan, "rule": info.rule}, "expiresAt": _format(info.expires_at)}}


def closing_patch(closing: Closing, current: Sequence[Condition], now: datetime) -> dict[str, Any]:
    """The status patch marking a child Expired or Cancelled (phase Failed, Ready False with the reason)."""
    if closing.state is WindowState.EXPIRED:
        message = f"not started within the start window of rule {closing.rule}"
    else:
        message = f"not completed within the completion window of rule {closing.rule}; cancelled"
    condition = Condition(conditions.READY, FALSE, closing.reason, message)
    marked = conditions.set_condition(current, condition, now)
    return {"status": {"phase": "Failed", "conditions": [c.to_dict() for c in marked]}}


# --- the controller --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSettings:
    tick: float = 10.0  # how often the timer looks at a plan's body (no API call)
    max_interval: float = 60.0  # the longest time between two passes over a plan
    clock: Clock = utc_now


class Pass:
    """One pass over one plan: its body, patch and clock, and what it reports."""

    def __init__(self, body: kopf.Body, patch: kopf.Patch, metrics: Metrics | None, now: datetime) -> None:
        self.body, self.patch, self.metrics, self.now = body, patch, metrics, now
        self.namespace = str(body.metadata.namespace)
        self.name = str(body.metadata.name)
        self.uid: str | None = body.metadata.get("uid")
        self.generation: int | None = body.metadata.get("generation")

    def parse(self) -> BackupPlan:
        try:
            plan = BackupPlan.model_validate(dict(self.body))
            for rule in plan.spec.rules:
                Schedule(rule.schedule, rule.time_zone)  # what the pydantic checks let through
        except pydantic.ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise self.refuse(f"read BackupPlan: {problems}") from None
        except ValueError as error:
            raise self.refuse(f"read BackupPlan: {error}") from None
        return plan

    def refuse(self, message: str) -> kopf.PermanentError:
        self.report(Outcome.INVALID_SPEC, message)
        return kopf.PermanentError(message)

    def report(
        self,
        outcome: Outcome,
        message: str,
        decision: PlanDecision | None = None,
        missing: Sequence[str] = (),
    ) -> None:
        previous = dict(self.body.status)
        fields, changed = plan_status(
            outcome, message, previous, self.generation, self.now, decision, missing
        )
        BackupPlanStatus.model_validate(fields)  # what goes on the wire is what the CRD allows
        self.patch.status.update(fields)
        for transition in changed:
            text = f"{transition.type} is {transition.new_status}"
            text += f": {transition.message}" if transition.message else ""
            self.event(transition.event_type, transition.reason, text)
        if self.metrics is not None:
            self.metrics.reconciled(KIND, f"{self.namespace}/{self.name}", outcome.value, fields.get("phase"))

    def event(self, kind: str, reason: str, message: str) -> None:
        kopf.event(self.body, type=kind, reason=reason, message=message)


@dataclass
class PlanController(UsesKube):
    settings: PlanSettings
    kube_factory: Callable[[], Kube]
    metrics: Metrics | None = None

    def reconcile(self, body: kopf.Body, patch: kopf.Patch, memo: Any) -> None:
        """A pass: read, decide, apply, report; when the next one is due goes into ``memo``."""
        run = Pass(body, patch, self.metrics, self.settings.clock())
        memo[WAKE_MEMO] = run.now + timedelta(seconds=self.settings.max_interval)
        plan = run.parse()
        tables = select_tables(plan.spec.selection, self.kube.list(TABLES, run.namespace))
        rules = [r.name for r in plan.spec.rules]
        listed = self.kube.list(BACKUPS, run.namespace, f"{PLAN_LABEL}={label_value(run.name)}")
        children = [c for obj in listed if (c := read_child(obj, run.name, run.uid, rules, run.now))]
        facts = PlanFacts(
            run.name, plan, _time(body.metadata.get("creationTimestamp")),
            (body.metadata.annotations or {}).get(RUN_NOW_ANNOTATION),
        )  # fmt: skip
        interval = timedelta(seconds=self.settings.max_interval)
        decision = decide(facts, tables.tables, children, run.now, interval)
        self.apply(run, plan, decision, children)
        outcome = Outcome.SUSPENDED if plan.spec.suspend else Outcome.ACTIVE
        selected = ", ".join(tables.tables) or "none"
        message = (
            f"{'suspended; ' if plan.spec.suspend else ''}{len(tables.tables)} tables selected ({selected})"
        )
        run.report(outcome, message, decision, tables.missing)
        memo[WAKE_MEMO] = decision.wake_at

    def apply(self, run: Pass, plan: BackupPlan, decision: PlanDecision, children: Sequence[Child]) -> None:
        vaults = {r.name: r.target_vault_ref.name for r in plan.spec.rules}
        rules = {r.name: r for r in plan.spec.rules}
        for new in decision.create:
            body = backup_body(new, run.name, run.namespace, run.uid, vaults[new.rule])
            if self.kube.create(BACKUPS, body):
                info = PlanInfo(new.name, new.rule, _expires(rules[new.rule], new.scheduled))
                self.patch_status(run.namespace, new.name, plan_info_patch(info, run.name))
                what = "on demand" if new.on_demand else f"scheduled {conditions.format_time(new.scheduled)}"
                run.event(
                    "Normal",
                    "BackupCreated",
                    f"created Backup {new.name} of Table {new.table} (rule {new.rule}, {what})",
                )
        for rule in decision.rules:
            if rule.run.missed:
                times = ", ".join(conditions.format_time(t) for t in rule.run.missed)
                more = " and earlier runs" if rule.run.missed_truncated else ""
                run.event("Warning", "RunsMissed", f"rule {rule.name} missed the runs at {times}{more}")
        found = {c.name: c for c in children}
        for closing in decision.close:
            current = found[closing.name].conditions if closing.name in found else ()
            self.patch_status(run.namespace, closing.name, closing_patch(closing, current, run.now))
            self.kube.delete(BACKUPS, run.namespace, closing.name)
            window = "start" if closing.state is WindowState.EXPIRED else "completion"
            run.event(
                "Warning",
                f"Backup{closing.reason}",
                f"Backup {closing.name} {closing.reason.lower()}: its {window} window closed",
            )
        for deletion in decision.delete:
            if self.kube.delete(BACKUPS, run.namespace, deletion.name):
                run.event("Normal", "RetentionDeleted", f"deleted Backup {deletion.name}: {deletion.reason}")
        for info in decision.plan_info:
            self.patch_status(run.namespace, info.name, plan_info_patch(info, run.name))

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.kube.patch(BACKUPS, namespace, f"{name}/status", patch)

    def tick(self, body: kopf.Body, patch: kopf.Patch, memo: Any) -> None:
        """The timer: a pass when one is due, else nothing (and no API call)."""
        if body.metadata.get("deletionTimestamp"):
            return
        token = (body.metadata.annotations or {}).get(RUN_NOW_ANNOTATION)
        generation = body.metadata.get("generation")
        if pass_due(memo.get(WAKE_MEMO), body.status, generation, token, self.settings.clock()):
            self.reconcile(body, patch, memo)

    def release(self, body: kopf.Body, logger: logging.Logger) -> None:
        """The plan is going: its children's backups stay in the vault (deletionPolicy Retain), whatever
        becomes of the Backup objects."""
        namespace, name = str(body.metadata.namespace), str(body.metadata.name)
        uid, rules = body.metadata.get("uid"), [r.get("name", "") for r in body.spec.get("rules") or ()]
        listed = self.kube.list(BACKUPS, namespace, f"{PLAN_LABEL}={label_value(name)}")
        now = self.settings.clock()
        for child in (c for obj in listed if (c := read_child(obj, name, uid, rules, now))):
            if child.deletion_policy != "Retain":
                self.kube.patch(BACKUPS, namespace, child.name, {"spec": {"deletionPolicy": "Retain"}})
        if self.metrics is not None:
            self.metrics.forget(KIND, f"{namespace}/{name}")
        logger.info("BackupPlan %s/%s deleted; its backups are retained", namespace, name)


def register(registry: kopf.OperatorRegistry, controller: PlanController) -> None:
    """Register the BackupPlan handlers in ``registry``."""
    on: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.resume(**on)
    @kopf.on.create(**on)
    @kopf.on.update(**on)
    def reconcile_plan(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        controller.reconcile(body, patch, memo)

    @kopf.on.delete(**on)
    def delete_plan(body: kopf.Body, logger: logging.Logger, **_: Any) -> None:
        controller.release(body, logger)

    @kopf.timer(**on, interval=controller.settings.tick)
    def plan_timer(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        controller.tick(body, patch, memo)
