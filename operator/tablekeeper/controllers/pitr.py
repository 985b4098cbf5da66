"""The PitrConfig controller: point-in-time recovery of one table, on or off, and its window.

On create, update and resume: while the Table is not Active the PitrConfig
waits (Progressing, phase Pending).  When enabled, spec.vaultRef must be the
Table's spec.backupVaultRef (a table's engine has one vault, and archives
into it): another is refused, Degraded with reason ``VaultMismatch``, phase
Failed; and it waits for that vault to be Ready.  Then
UpdateContinuousBackups through the table's engine, when the engine's
setting differs from the spec (on/off, recoveryPeriodInDays).

A timer (the status interval, 30 s by default) refreshes the status from
DescribeContinuousBackups: earliestRestorableTime, latestRestorableTime, and
lagSeconds (now - latest).  The PITRReady condition says whether the window
keeps growing: True while the archive is current; False with reason
``Enabling`` before the first base is in the vault, ``ArchiveLagging`` when
the lag exceeds ``MAX_LAG_SECONDS``, ``PitrOffInEngine`` when the engine has
it off while the spec has it on (the phase then says Disabled and Degraded
is set; the timer only reports: an update or a restart of the operator turns
it on again), and ``Disabled`` when the spec turns it off.  Phases: Pending,
Enabling (until the window has an end), Enabled, Disabled, Failed.

Deleting a PitrConfig turns PITR off in the engine (the engine then drops the
window: its archive and bases), through a finalizer.  Not when its Table is
gone or being deleted: a deleted table keeps its archive, restorable for the
recovery period, as DynamoDB keeps it; not when this PitrConfig never
turned PITR on (refused, or disabled); and not when another PitrConfig of
the table is left: the table is handed to it, and its own pass sets the
engine to its spec (on, off, its period).  kopf runs a deletion at least
once: one that comes back with a stale body, after its object went (or
while another holds the table), leaves the engine to the new holder
(``verdicts.outlived``, and the rule before).

One PitrConfig per table: two would turn one engine's PITR on and off in
turn.  The oldest (creationTimestamp, then name) of a table's PitrConfigs not
being deleted holds it; any other is refused, Degraded with reason
``TableClaimed``, phase Failed, and looked at again at the retry delay (it
takes over once the holder is deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import kopf
import pydantic

from tablekeeper.controllers import conditions
from tablekeeper.controllers.conditions import Condition, ConditionStatus, Transition
from tablekeeper.controllers.engine_client import (
    EngineBusy,
    EngineClient,
    EnginePitr,
    EngineRefused,
    EngineUnavailable,
)
from tablekeeper.controllers.kube import Kind, Kube, UsesKube
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.controllers.tables import (
    TABLES,
    TableSettings,
    engine_of,
    table_or_none,
    table_problem,
    vault_mismatch,
)
from tablekeeper.controllers.vaults import BACKUP_VAULTS, vault_problem
from tablekeeper.controllers.verdicts import (
    FALSE,
    TRUE,
    Clock,
    Reporter,
    Verdict,
    apply_verdict,
    condition_reason,
    moved_on,
    outlived,
    problems,
    seen,
    utc_now,
)
from tablekeeper.resources.common import API_VERSION, GROUP, VERSION, ConditionType
from tablekeeper.resources.pitr import PitrConfig, PitrConfigSpec, PitrConfigStatus, PitrPhase
from tablekeeper.resources.table import Table

KIND: Final = "PitrConfig"
PLURAL: Final = "pitrconfigs"
PITR_CONFIGS: Final = Kind(API_VERSION, PLURAL)
PITR_READY: Final = ConditionType.PITR_READY.value
MAX_LAG_SECONDS: Final = 60.0
DELETE_ATTEMPTS_WITHOUT_ENGINE: Final = 6  # then the PitrConfig goes; PITR stays on in the engine




# --- outcomes and the status they make (pure) -----------------------------------------------------


class PitrOutcome(StrEnum):
    """How a pass on a PitrConfig ended; each is a reason word on the conditions."""

    INVALID_SPEC = "InvalidSpec"
    CHANGE_REFUSED = "ChangeRefused"
    VAULT_MISMATCH = "VaultMismatch"
    TABLE_CLAIMED = "TableClaimed"
    TABLE_NOT_READY = "TableNotReady"
    VAULT_NOT_READY = "VaultNotReady"
    ENGINE_UNAVAILABLE = "EngineUnavailable"
    ENGINE_REFUSED = "EngineRefused"
    ENABLING = "Enabling"
    ENABLED = "PitrEnabled"
    DISABLED = "PitrDisabled"
    OFF_IN_ENGINE = "PitrOffInEngine"
    DELETING = "Deleting"


# The phase an outcome sets besides the conditions; None keeps the phase (Pending at first).
VERDICTS: Final[Mapping[PitrOutcome, tuple[Verdict, PitrPhase | None]]] = {
    PitrOutcome.INVALID_SPEC: (Verdict(FALSE, FALSE, TRUE), PitrPhase.FAILED),
    PitrOutcome.CHANGE_REFUSED: (Verdict(FALSE, FALSE, TRUE), PitrPhase.FAILED),
    PitrOutcome.VAULT_MISMATCH: (Verdict(FALSE, FALSE, TRUE), PitrPhase.FAILED),
    PitrOutcome.TABLE_CLAIMED: (Verdict(FALSE, FALSE, TRUE), PitrPhase.FAILED),
    PitrOutcome.TABLE_NOT_READY: (Verdict(FALSE, TRUE, FALSE), None),
    PitrOutcome.VAULT_NOT_READY: (Verdict(FALSE, TRUE, FALSE), None),
    PitrOutcome.ENGINE_UNAVAILABLE: (Verdict(FALSE, TRUE, FALSE), None),
    PitrOutcome.ENGINE_REFUSED: (Verdict(FALSE, FALSE, TRUE), PitrPhase.FAILED),
    PitrOutcome.ENABLING: (Verdict(FALSE, TRUE, FALSE), PitrPhase.ENABLING),
    PitrOutcome.ENABLED: (Verdict(TRUE, FALSE, FALSE), PitrPhase.ENABLED),
    PitrOutcome.DISABLED: (Verdict(TRUE, FALSE, FALSE), PitrPhase.DISABLED),
    PitrOutcome.OFF_IN_ENGINE: (Verdict(FALSE, FALSE, TRUE), PitrPhase.DISABLED),
    PitrOutcome.DELETING: (Verdict(FALSE, TRUE, FALSE), None),
}

# The outcomes after which the timer refreshes the window (PITR is, or should be, on in the engine).
REFRESHED: Final = frozenset({PitrOutcome.ENABLING, PitrOutcome.ENABLED, PitrOutcome.OFF_IN_ENGINE})


@dataclass(frozen=True)
class Window:
    """What the engine says of the table's PITR, and the decision it makes, at ``now``."""

    outcome: PitrOutcome
    message: str
    ready: Condition  # PITRReady, without its transition time
    fields: dict[str, Any]  # earliestRestorableTime, latestRestorableTime, lagSeconds


def window(
    spec: PitrConfigSpec, engine: EnginePitr, now: datetime, max_lag: float = MAX_LAG_SECONDS
) -> Window:
    """The outcome, the PITRReady condition and the window fields for the engine's ``engine`` state."""
    lag = None if engine.latest is None else max(0.0, round((now - engine.latest).total_seconds(), 1))
    fields: dict[str, Any] = {
        "earliestRestorableTime": _time(engine.earliest),
        "latestRestorableTime": _time(engine.latest),
        "lagSeconds": lag,
    }

    def decided(outcome: PitrOutcome, message: str, ready: ConditionStatus, reason: str) -> Window:
        return Window(outcome, message, Condition(PITR_READY, ready, reason, message), fields)

    if not spec.enabled:
        message = "point-in-time recovery is off" + (
            " (the engine still has it on)" if engine.enabled else ""
        )
        return decided(PitrOutcome.DISABLED, message, FALSE, "Disabled")
    if not engine.enabled:
        message = "point-in-time recovery is enabled in the spec but off in the table's engine"
        return decided(PitrOutcome.OFF_IN_ENGINE, message, FALSE, PitrOutcome.OFF_IN_ENGINE.value)
    if engine.latest is None or lag is None:
        message = "point-in-time recovery is being enabled: the first base is being written to the vault"
        return decided(PitrOutcome.ENABLING, message, FALSE, "Enabling")
    span = f"restorable from {_time(engine.earliest)} to {_time(engine.latest)}"
    if lag > max_lag:
        message = f"the archive is {lag:.0f}s behind the table (more than {max_lag:.0f}s); {span}"
        return decided(PitrOutcome.ENABLED, message, FALSE, "ArchiveLagging")
    return decided(PitrOutcome.ENABLED, span, TRUE, "ArchiveCurrent")


def _time(value: datetime | None) -> str | None:
    return None if value is None else conditions.format_time(value)


def holder(configs: Iterable[Mapping[str, Any]], table_name: str) -> str | None:
    """The PitrConfig that holds ``table_name``: the oldest of its PitrConfigs not being deleted."""
    claims = []
    for config in configs:
        meta = config.get("metadata") or {}
        target = ((config.get("spec") or {}).get("tableRef") or {}).get("name")
        if target == table_name and not meta.get("deletionTimestamp"):
            claims.append((str(meta.get("creationTimestamp") or ""), str(meta.get("name"))))
    return min(claims)[1] if claims else None


def needs_update(spec: PitrConfigSpec, engine: EnginePitr) -> bool:
    """Whether the engine's setting differs from the spec (on/off, and the period while on)."""
    if spec.enabled != engine.enabled:
        return True
    return spec.enabled and engine.recovery_period_in_days != spec.recovery_period_in_days


def pitr_status_after(
    outcome: PitrOutcome, message: str, previous: Mapping[str, Any], generation: int | None, now: datetime,
    found: Window | None = None,
) -> tuple[dict[str, Any], tuple[Transition, ...]]:  # fmt: skip
    """The status fields ``outcome`` sets on top of ``previous`` (with the window when one was read)."""
    verdict, wanted = VERDICTS[outcome]
    old = conditions.conditions_from(previous.get("conditions"))
    new = apply_verdict(old, outcome.value, message, verdict, generation, now)
    if found is not None:
        pitr_ready = Condition(
            PITR_READY,
            found.ready.status,
            found.ready.reason,
            found.ready.message,
            observed_generation=generation,
        )
        new = conditions.set_condition(new, pitr_ready, now)
    phase = wanted or _phase(previous.get("phase"))
    fields = conditions.status_fields(generation, new, phase.value)
    if found is not None:
        fields.update(found.fields)
    return fields, conditions.transitions(old, new)


def _phase(value: Any) -> PitrPhase:
    try:
        return PitrPhase(value)
    except ValueError:
        return PitrPhase.PENDING


def timer_may_refresh(status: Mapping[str, Any]) -> bool:
    """Whether the timer refreshes the window: after a pass that left PITR on (or found it off)."""
    reason = condition_reason(status, conditions.READY)
    return reason is not None and reason in REFRESHED


def turned_on(status: Mapping[str, Any]) -> bool:
    """Whether this PitrConfig's passes turned PITR on (so deleting it turns it off)."""
    return status.get("phase") in (PitrPhase.ENABLING, PitrPhase.ENABLED)


# --- the controller -------------------------------------------------------------------------------


class PitrPass:
    """One handler call on one PitrConfig: its body, the clock, and what it reports."""

    def __init__(self, body: kopf.Body, patch: kopf.Patch, metrics: Metrics | None, now: datetime) -> None:
        self.body, self.now = body, now
        self.namespace, self.name = str(body.metadata.namespace), str(body.metadata.name)
        self.generation: int | None = body.metadata.get("generation")
        self.reporter = Reporter(
            KIND, body, patch, PitrConfigStatus, metrics, readiness=frozenset({PITR_READY})
        )

    def report(self, outcome: PitrOutcome, message: str, found: Window | None = None) -> None:
        status = self.reporter.status
        fields, changed = pitr_status_after(outcome, message, status, self.generation, self.now, found)
        self.reporter.write(outcome.value, fields, changed)

    def report_window(self, found: Window) -> None:
        self.report(found.outcome, found.message, found)

    def refuse(self, outcome: PitrOutcome, message: str) -> kopf.PermanentError:
        self.report(outcome, message)
        return kopf.PermanentError(message)


@dataclass
class PitrController(UsesKube):
    settings: TableSettings
    kube_factory: Callable[[], Kube]
    metrics: Metrics | None = None
    clock: Clock = utc_now
    max_lag: float = MAX_LAG_SECONDS

    def reconcile(self, body: kopf.Body, patch: kopf.Patch, old: Mapping[str, Any] | None = None) -> None:
        run = PitrPass(body, patch, self.metrics, self.clock())
        try:
            config = PitrConfig.model_validate(dict(body))
        except pydantic.ValidationError as error:
            raise run.refuse(PitrOutcome.INVALID_SPEC, f"read PitrConfig: {problems(error)}") from None
        refused = refused_update(config, old)
        if refused:
            raise run.refuse(PitrOutcome.CHANGE_REFUSED, "; ".join(refused))
        table_name = config.spec.table_ref.name
        held_by = holder(self.kube.list(PITR_CONFIGS, run.namespace), table_name)
        if held_by is not None and held_by != run.name:
            message = (f"Table {table_name} has its point-in-time recovery set by PitrConfig {held_by}: "
                       "one PitrConfig per table")
            run.report(PitrOutcome.TABLE_CLAIMED, message)
            raise kopf.TemporaryError(message, delay=self.settings.retry_delay)
        client = self.ready_engine(run, config)
        spec = config.spec
        try:
            current = client.describe_pitr()
            if needs_update(spec, current):
                current = client.update_pitr(spec.enabled, spec.recovery_period_in_days)
        except (EngineUnavailable, EngineBusy) as error:
            run.report(PitrOutcome.ENGINE_UNAVAILABLE, f"waiting for the table's engine: {error}")
            raise
        except EngineRefused as error:
            run.report(PitrOutcome.ENGINE_REFUSED, str(error))
            raise
        run.report_window(window(spec, current, run.now, self.max_lag))

    def ready_engine(self, run: PitrPass, config: PitrConfig) -> EngineClient:
        """The engine of the Table, once it is Active (and, to enable, on the PitrConfig's vault)."""
        table_name, vault_name = config.spec.table_ref.name, config.spec.vault_ref.name
        found = self.kube.get(TABLES, run.namespace, table_name)
        problem = table_problem(found, table_name)
        table = table_or_none(found)
        if problem is None and table is None:
            problem = f"Table {table_name} is invalid"
        if problem is not None or table is None:
            run.report(PitrOutcome.TABLE_NOT_READY, f"waiting: {problem}")
            raise kopf.TemporaryError(str(problem), delay=self.settings.retry_delay)
        if config.spec.enabled:
            mismatch = vault_mismatch(table, vault_name, "PITR archive")
            if mismatch is not None:
                raise run.refuse(PitrOutcome.VAULT_MISMATCH, mismatch)
            problem = vault_problem(self.kube.get(BACKUP_VAULTS, run.namespace, vault_name), vault_name)
            if problem is not None:
                run.report(PitrOutcome.VAULT_NOT_READY, f"waiting: {problem}")
                raise kopf.TemporaryError(problem, delay=self.settings.retry_delay)
        return self.engine_of(table)

    def engine_of(self, table: Table) -> EngineClient:
        return engine_of(self.kube, self.settings, table)

    def refresh(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """Between passes: the window as the engine has it now; never changes the engine."""
        if not timer_may_refresh(body.status) or body.metadata.get("deletionTimestamp"):
            return
        start = seen(body)
        run = PitrPass(body, patch, self.metrics, self.clock())
        run.reporter.only_if_unchanged_since(start)
        try:
            config = PitrConfig.model_validate(dict(body))
        except pydantic.ValidationError:
            return  # the handler reports it
        table = table_or_none(self.kube.get(TABLES, run.namespace, config.spec.table_ref.name))
        try:
            if table is None:
                raise kopf.TemporaryError(f"Table {config.spec.table_ref.name} is gone")
            current = self.engine_of(table).describe_pitr()
        except (kopf.TemporaryError, kopf.PermanentError) as error:
            current, unreadable = None, error
        else:
            unreadable = None
        # A spec change (PITR turned off, say) may have been handled during the engine call.
        if moved_on(start, self.kube.get(PITR_CONFIGS, run.namespace, run.name)):
            return
        if current is None:
            run.report(PitrOutcome.ENGINE_UNAVAILABLE, f"cannot read the window: {unreadable}")
            return
        run.report_window(window(config.spec, current, run.now, self.max_lag))

    def delete(self, body: kopf.Body, patch: kopf.Patch, retry: int, logger: logging.Logger) -> None:
        run = PitrPass(body, patch, self.metrics, self.clock())
        where = f"PitrConfig {run.namespace}/{run.name}"
        if outlived(body, self.kube.get(PITR_CONFIGS, run.namespace, run.name)):
            logger.info("%s already deleted; nothing to do", where)
            return
        table_name = (body.spec.get("tableRef") or {}).get("name", "")
        found = self.kube.get(TABLES, run.namespace, table_name)
        table = table_or_none(found)
        leaving = found is None or bool((found.get("metadata") or {}).get("deletionTimestamp"))
        if table is None or leaving or not turned_on(body.status):
            logger.info("%s deleted; point-in-time recovery left as it is in the engine", where)
            run.reporter.forget()
            return
        successor = holder(self.kube.list(PITR_CONFIGS, run.namespace), table_name)
        if successor is not None and successor != run.name:
            logger.info("%s deleted; PitrConfig %s now sets point-in-time recovery", where, successor)
            run.reporter.forget()
            return
        run.report(PitrOutcome.DELETING, "turning point-in-time recovery off")
        try:
            self.engine_of(table).update_pitr(False)
        except (EngineUnavailable, EngineBusy):
            if retry + 1 < DELETE_ATTEMPTS_WITHOUT_ENGINE:
                raise
            kopf.warn(
                body, reason="EngineUnavailable", message="deleted without the engine: PITR may stay on"
            )
        except EngineRefused as error:
            kopf.warn(body, reason="EngineRefused", message=f"deleted; the engine kept PITR: {error}")
        run.reporter.forget()
        logger.info("%s deleted; point-in-time recovery is off", where)


def refused_update(config: PitrConfig, old: Mapping[str, Any] | None) -> list[str]:
    """The immutable fields an update changed (the CRD's transition rules, checked again here)."""
    if not old or not old.get("spec"):
        return []
    try:
        old_spec = PitrConfigSpec.model_validate(old["spec"])
    except pydantic.ValidationError:
        return []
    return config.spec.refused_changes(old_spec)


def register(registry: kopf.OperatorRegistry, controller: PitrController) -> None:
    """Register the PitrConfig handlers in ``registry``."""
    on: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.resume(**on)
    @kopf.on.create(**on)
    @kopf.on.update(**on, field="spec")
    def reconcile_pitr(body: kopf.Body, patch: kopf.Patch, old: Any = None, **_: Any) -> None:
        # With field="spec", kopf passes the old spec itself.
        previous = {"spec": old} if isinstance(old, Mapping) else None
        controller.reconcile(body, patch, previous)

    @kopf.on.delete(**on)
    def delete_pitr(body: kopf.Body, patch: kopf.Patch, retry: int, logger: logging.Logger, **_: Any) -> None:
        controller.delete(body, patch, retry, logger)

    def refreshed(body: kopf.Body, **_: Any) -> bool:
        # kopf runs the timer only while this holds: not for a disabled or refused PitrConfig.
        return timer_may_refresh(body.status)

    interval = controller.settings.status_interval

    @kopf.timer(**on, interval=interval, initial_delay=interval, when=refreshed)
    def refresh_pitr(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.refresh(body, patch)
