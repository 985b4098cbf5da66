"""The Backup controller: one on-demand backup, made by the table's engine, tracked until it is done.

A Backup is taken by the engine of its Table (CreateBackup), into the vault
that engine runs with.  A Table's engine has one vault, its
spec.backupVaultRef, so a Backup must name that vault: one naming another
(or any vault, for a Table without backupVaultRef, whose backups go to the
folder vault on its own volume) is refused, Degraded with reason
``VaultMismatch`` and phase Failed.  Refused, not waited on: a Backup is a
request for a backup *now*; after fixing the Table, create another.

On create (and resume): while the Table is not Active, or its BackupVault
not Ready, the Backup waits (Progressing, phase Pending).  Then the backup is
made with BackupName spec.backupName, else metadata.name, and its ARN and id
go into the status at once.  Idempotent: with an ARN in the status nothing is
created again; without one, a backup of that name the engine made since this
object was created (creationTimestamp, with a few seconds of slack for
clocks) is taken as this object's own, so an operator that stopped between
CreateBackup and the status patch does not make a second one.

A timer polls DescribeBackup while the backup is CREATING; the status
mirrors it (backupStatus, sizeBytes, itemCount, startedAt, tableArn) and the
phase goes Creating -> Available or Failed (with the engine's
BackupStatusReason).  completedAt is when the operator first saw it done
(the engine reports no completion time): within a poll interval.  Only the
fields named here are written; what others own (status.plan, expiresAt, set
by the BackupPlan controller) is left alone.

Deleting a Backup with deletionPolicy Retain (switchable up to the deletion,
on purpose) leaves the backup in the vault.  With Delete (the default), a
finalizer keeps the object until the backup is gone: through the table's
engine while the Table exists and still runs on that vault; otherwise (the
Table deleted, or moved to another vault) the operator deletes it from the
vault itself, opened with the BackupVault's key and credentials, since a
backup outlives its table.  BackupNotFound is success.  When the BackupVault
itself is gone the backup cannot be reached: the object goes, with a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import kopf
import pydantic

from tablekeeper.controllers import conditions
from tablekeeper.controllers.conditions import Transition
from tablekeeper.controllers.engine_client import (
    EngineBackup,
    EngineBusy,
    EngineClient,
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
from tablekeeper.controllers.vaults import (
    BACKUP_VAULTS,
    StoreOpener,
    VaultCheckFailed,
    open_vault,
    vault_problem,
)
from tablekeeper.controllers.verdicts import (
    FALSE,
    TRUE,
    Clock,
    Reporter,
    Verdict,
    apply_verdict,
    condition_reason,
    moved_on,
    problems,
    seen,
    utc_now,
)
from tablekeeper.resources.backup import (
    BACKUP_NAME_PATTERN,
    Backup,
    BackupPhase,
    BackupState,
    BackupStatus,
    DeletionPolicy,
)
from tablekeeper.resources.common import API_VERSION, GROUP, VERSION
from tablekeeper.resources.table import Table
from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.format import BackupManifest, BackupNotFound
from tablekeeper.vault.store import open_store

KIND: Final = "Backup"
PLURAL: Final = "backups"
BACKUPS: Final = Kind(API_VERSION, PLURAL)
ADOPTION_SLACK: Final = timedelta(seconds=5)  # clock difference tolerated between API server and engine
DELETE_ATTEMPTS_WITH_ENGINE: Final = 6  # then the backup is deleted from the vault directly




# --- outcomes and the status they make (pure) -----------------------------------------------------


class BackupOutcome(StrEnum):
    """How a pass on a Backup ended; each is a reason word on the conditions."""

    INVALID_SPEC = "InvalidSpec"
    VAULT_MISMATCH = "VaultMismatch"
    TABLE_NOT_READY = "TableNotReady"
    VAULT_NOT_READY = "VaultNotReady"
    ENGINE_UNAVAILABLE = "EngineUnavailable"
    ENGINE_REFUSED = "EngineRefused"
    CREATING = "BackupCreating"
    AVAILABLE = "BackupAvailable"
    FAILED = "BackupFailed"
    MISSING = "BackupMissing"
    DELETING = "Deleting"


# The phase an outcome sets besides the conditions; None keeps the phase (Pending at first).
VERDICTS: Final[Mapping[BackupOutcome, tuple[Verdict, BackupPhase | None]]] = {
    BackupOutcome.INVALID_SPEC: (Verdict(FALSE, FALSE, TRUE), BackupPhase.FAILED),
    BackupOutcome.VAULT_MISMATCH: (Verdict(FALSE, FALSE, TRUE), BackupPhase.FAILED),
    BackupOutcome.TABLE_NOT_READY: (Verdict(FALSE, TRUE, FALSE), None),
    BackupOutcome.VAULT_NOT_READY: (Verdict(FALSE, TRUE, FALSE), None),
    # The backup is what it was (an AVAILABLE one stays usable): only the engine is away.
    BackupOutcome.ENGINE_UNAVAILABLE: (Verdict(None, TRUE, FALSE), None),
    BackupOutcome.ENGINE_REFUSED: (Verdict(FALSE, FALSE, TRUE), BackupPhase.FAILED),
    BackupOutcome.CREATING: (Verdict(FALSE, TRUE, FALSE), BackupPhase.CREATING),
    BackupOutcome.AVAILABLE: (Verdict(TRUE, FALSE, FALSE), BackupPhase.AVAILABLE),
    BackupOutcome.FAILED: (Verdict(FALSE, FALSE, TRUE), BackupPhase.FAILED),
    BackupOutcome.MISSING: (Verdict(FALSE, FALSE, TRUE), BackupPhase.FAILED),
    BackupOutcome.DELETING: (Verdict(FALSE, TRUE, FALSE), BackupPhase.DELETING),
}

REFUSALS: Final = frozenset(
    {BackupOutcome.INVALID_SPEC, BackupOutcome.VAULT_MISMATCH, BackupOutcome.ENGINE_REFUSED}
)

OUTCOME_OF_STATE: Final[Mapping[str, BackupOutcome]] = {
    BackupState.CREATING: BackupOutcome.CREATING,
    BackupState.AVAILABLE: BackupOutcome.AVAILABLE,
    BackupState.FAILED: BackupOutcome.FAILED,
    BackupState.DELETED: BackupOutcome.MISSING,
}


def backup_status_after(
    outcome: BackupOutcome, message: str, previous: Mapping[str, Any], generation: int | None, now: datetime,
    backup: EngineBackup | None = None,
) -> tuple[dict[str, Any], tuple[Transition, ...]]:  # fmt: skip
    """The status fields ``outcome`` sets on top of ``previous``, and the condition transitions."""
    verdict, wanted = VERDICTS[outcome]
    old = conditions.conditions_from(previous.get("conditions"))
    new = apply_verdict(old, outcome.value, message, verdict, generation, now)
    phase = wanted or _phase(previous.get("phase"))
    fields = conditions.status_fields(generation, new, phase.value)
    if backup is not None:
        fields.update(backup_fields(backup, previous, now))
    return fields, conditions.transitions(old, new)


def _phase(value: Any) -> BackupPhase:
    try:
        return BackupPhase(value)
    except ValueError:
        return BackupPhase.PENDING


def backup_fields(backup: EngineBackup, previous: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The status fields that mirror the engine's view of the backup."""
    fields: dict[str, Any] = {
        "backupArn": backup.arn,
        "backupId": backup.backup_id,
        "backupStatus": backup.status,
        "startedAt": conditions.format_time(backup.created),
    }
    if backup.size_bytes is not None:
        fields["sizeBytes"] = backup.size_bytes
    if backup.item_count is not None:
        fields["itemCount"] = backup.item_count
    if backup.table_arn is not None:
        fields["tableArn"] = backup.table_arn
    done = backup.status in (BackupState.AVAILABLE, BackupState.FAILED)
    if done and not previous.get("completedAt"):
        fields["completedAt"] = conditions.format_time(now)
    return fields


def backup_name(backup: Backup) -> str:
    """The backup's name in the vault: spec.backupName, else metadata.name; ValueError if unusable."""
    name = backup.spec.backup_name or backup.metadata.name or ""
    if not 3 <= len(name) <= 255 or not re.fullmatch(BACKUP_NAME_PATTERN, name):
        raise ValueError(
            f"the backup name {name!r} (spec.backupName, else metadata.name) must be 3 to 255 characters"
            " of a-z, A-Z, 0-9, '_', '-', '.'"
        )
    return name


def adoptable(found: list[EngineBackup], created_after: datetime | None) -> EngineBackup | None:
    """Of the engine's backups of this name, the one an earlier pass made for this object, if any:
    the newest not deleted and not older than the object (None: any age)."""
    since = None if created_after is None else created_after - ADOPTION_SLACK
    candidates = [
        b for b in found if b.status != BackupState.DELETED and (since is None or b.created >= since)
    ]
    return max(candidates, key=lambda b: b.created, default=None)


def created_at(body: Mapping[str, Any]) -> datetime | None:
    """The object's creationTimestamp (the API server sets it; a fake may not)."""
    stamp = (body.get("metadata") or {}).get("creationTimestamp")
    return conditions.parse_time(stamp) if stamp else None


def backup_of_manifest(manifest: BackupManifest) -> EngineBackup:
    """A backup found in the vault itself, as the engine would describe it: AVAILABLE."""
    # Imported here: it brings the engine's modules, which only this rare path needs.
    from tablekeeper.vault.service import BackupView

    view = BackupView.of_manifest(manifest)
    return EngineBackup(
        arn=view.arn, name=view.name, status=view.status, created=datetime.fromtimestamp(view.created, UTC),
        size_bytes=view.size_bytes, item_count=view.item_count, table_arn=view.table.arn,
    )  # fmt: skip


def may_have_made(status: Mapping[str, Any]) -> bool:
    """Whether a Backup without a recorded ARN may still have made one: not when a pass refused it
    (then a backup of its name is another object's, and must not be deleted with this one)."""
    return condition_reason(status, conditions.DEGRADED) not in REFUSALS


def deletion_policy(body: Mapping[str, Any]) -> DeletionPolicy:
    """spec.deletionPolicy; an unreadable one is Retain (never delete what cannot be read)."""
    try:
        return DeletionPolicy((body.get("spec") or {}).get("deletionPolicy", DeletionPolicy.DELETE))
    except ValueError:
        return DeletionPolicy.RETAIN


# --- the controller -------------------------------------------------------------------------------


class BackupPass:
    """One handler call on one Backup: its body, the clock, and what it reports."""

    def __init__(self, body: kopf.Body, patch: kopf.Patch, metrics: Metrics | None, now: datetime) -> None:
        self.body, self.now = body, now
        self.namespace, self.name = str(body.metadata.namespace), str(body.metadata.name)
        self.generation: int | None = body.metadata.get("generation")
        self.reporter = Reporter(KIND, body, patch, BackupStatus, metrics)

    def report(self, outcome: BackupOutcome, message: str, backup: EngineBackup | None = None) -> None:
        status = self.reporter.status
        fields, changed = backup_status_after(outcome, message, status, self.generation, self.now, backup)
        self.reporter.write(outcome.value, fields, changed)

    def refuse(self, outcome: BackupOutcome, message: str) -> kopf.PermanentError:
        self.report(outcome, message)
        return kopf.PermanentError(message)

    def report_backup(self, backup: EngineBackup) -> None:
        outcome = OUTCOME_OF_STATE.get(backup.status, BackupOutcome.MISSING)
        message = f"backup {backup.name} ({backup.backup_id}) is {backup.status}"
        if backup.reason:
            message += f": {backup.reason}"
        self.report(outcome, message, backup)


@dataclass
class BackupController(UsesKube):
    settings: TableSettings
    kube_factory: Callable[[], Kube]
    metrics: Metrics | None = None
    clock: Clock = utc_now
    opener: StoreOpener = open_store

    @property
    def poll_interval(self) -> float:
        return self.settings.poll_delay

    def reconcile(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """Make the backup (once), or look at the one made."""
        run = BackupPass(body, patch, self.metrics, self.clock())
        try:
            backup = Backup.model_validate(dict(body))
            name = backup_name(backup)
        except (pydantic.ValidationError, ValueError) as error:
            raise run.refuse(BackupOutcome.INVALID_SPEC, f"read Backup: {problems(error)}") from None
        if body.status.get("backupArn"):
            self.poll(body, patch)
            return
        client = self.ready_engine(run, backup)
        try:
            made = adoptable(client.find_backups(name), created_at(body)) or client.create_backup(name)
        except (EngineUnavailable, EngineBusy) as error:
            run.report(BackupOutcome.ENGINE_UNAVAILABLE, f"waiting for the table's engine: {error}")
            raise
        except EngineRefused as error:
            run.report(BackupOutcome.ENGINE_REFUSED, str(error))
            raise
        run.report_backup(made)

    def ready_engine(self, run: BackupPass, backup: Backup) -> EngineClient:
        """The engine of the Backup's Table, once the Table is Active on the Backup's vault."""
        table_name, vault_name = backup.spec.table_ref.name, backup.spec.vault_ref.name
        found = self.kube.get(TABLES, run.namespace, table_name)
        problem = table_problem(found, table_name)
        if problem is None and found is not None:
            try:
                table = Table.model_validate(found)
            except pydantic.ValidationError as error:
                problem = f"Table {table_name} is invalid: {problems(error)}"
        if problem is not None:
            run.report(BackupOutcome.TABLE_NOT_READY, f"waiting: {problem}")
            raise kopf.TemporaryError(problem, delay=self.settings.retry_delay)
        mismatch = vault_mismatch(table, vault_name)
        if mismatch is not None:
            raise run.refuse(BackupOutcome.VAULT_MISMATCH, mismatch)
        problem = vault_problem(self.kube.get(BACKUP_VAULTS, run.namespace, vault_name), vault_name)
        if problem is not None:
            run.report(BackupOutcome.VAULT_NOT_READY, f"waiting: {problem}")
            raise kopf.TemporaryError(problem, delay=self.settings.retry_delay)
        return self.engine_of(table)

    def engine_of(self, table: Table) -> EngineClient:
        return engine_of(self.kube, self.settings, table)

    def poll(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """While the backup is being created: how it is now, from its table's engine."""
        arn = body.status.get("backupArn")
        if not arn or body.status.get("backupStatus") != BackupState.CREATING:
            return
        start = seen(body)
        run = BackupPass(body, patch, self.metrics, self.clock())
        run.reporter.only_if_unchanged_since(start)
        table_name = body.spec.get("tableRef", {}).get("name", "")
        found = self.kube.get(TABLES, run.namespace, table_name)
        try:
            table = Table.model_validate(found) if found is not None else None
            described = self.engine_of(table).describe_backup(arn) if table is not None else None
        except (pydantic.ValidationError, kopf.TemporaryError, kopf.PermanentError) as error:
            if not self.moved_on(start, run):
                run.report(BackupOutcome.ENGINE_UNAVAILABLE, f"cannot reach the table's engine: {error}")
            return
        if self.moved_on(start, run):
            return
        if table is None:
            self.poll_vault(run, body)
        elif described is None:
            run.report(BackupOutcome.MISSING, f"the table's engine has no backup {arn}")
        else:
            run.report_backup(described)

    def moved_on(self, start: Mapping[str, Any], run: BackupPass) -> bool:
        """Whether a handler wrote this Backup's status (or it went) during the timer's engine call."""
        return moved_on(start, self.kube.get(BACKUPS, run.namespace, run.name))

    def poll_vault(self, run: BackupPass, body: kopf.Body) -> None:
        """The Table is gone with its engine: the backup is done if its manifest made it to the vault."""
        backup_id, vault_name = body.status.get("backupId", ""), body.spec.get("vaultRef", {}).get("name", "")
        gone = f"Table {body.spec.get('tableRef', {}).get('name')} is gone"
        try:
            vault = open_vault(self.kube, run.namespace, vault_name, self.opener)
            if vault is None:
                run.report(BackupOutcome.FAILED, f"{gone}, and BackupVault {vault_name} too")
                return
            run.report_backup(backup_of_manifest(vault.load_manifest(backup_id)))
        except BackupNotFound:
            run.report(
                BackupOutcome.FAILED, f"{gone}: its engine stopped before backup {backup_id} was complete"
            )
        except VaultCheckFailed as failure:
            run.report(BackupOutcome.ENGINE_UNAVAILABLE, f"{gone}; cannot open its vault: {failure.message}")
        except VaultError as error:
            run.report(BackupOutcome.ENGINE_UNAVAILABLE, f"{gone}; cannot read its vault: {error}")

    def delete(self, body: kopf.Body, patch: kopf.Patch, retry: int, logger: logging.Logger) -> None:
        run = BackupPass(body, patch, self.metrics, self.clock())
        if deletion_policy(body) is DeletionPolicy.RETAIN:
            logger.info(
                "Backup %s/%s deleted; the backup stays in its vault (Retain)", run.namespace, run.name
            )
            run.reporter.forget()
            return
        run.report(BackupOutcome.DELETING, "deleting the backup from its vault")
        table_name = body.spec.get("tableRef", {}).get("name", "")
        vault_name = body.spec.get("vaultRef", {}).get("name", "")
        found = self.kube.get(TABLES, run.namespace, table_name)
        table = table_or_none(found)
        on_vault = table is not None and vault_mismatch(table, vault_name) is None
        alive = found is not None and not (found.get("metadata") or {}).get("deletionTimestamp")
        if table is not None and on_vault and alive and retry < DELETE_ATTEMPTS_WITH_ENGINE:
            self.delete_through_engine(body, table)
        else:
            self.delete_in_vault(body, vault_name)
        run.reporter.forget()
        logger.info("Backup %s/%s deleted with its backup", run.namespace, run.name)

    def delete_through_engine(self, body: kopf.Body, table: Table) -> None:
        client = self.engine_of(table)
        arn = body.status.get("backupArn")
        if not arn and may_have_made(body.status):  # made before a crash, never recorded: by name
            try:
                backup = Backup.model_validate(dict(body))
                made = adoptable(client.find_backups(backup_name(backup)), created_at(body))
            except (pydantic.ValidationError, ValueError):
                return  # nothing can have been made from an invalid spec
            if made is None:
                return
            arn = made.arn
        if not arn:
            return
        try:
            client.delete_backup(arn)
        except EngineRefused as error:
            kopf.warn(body, reason="EngineRefused", message=f"the backup may stay in the vault: {error}")

    def delete_in_vault(self, body: kopf.Body, vault_name: str) -> None:
        """Delete the backup from its vault directly: its table's engine is gone or elsewhere."""
        backup_id = body.status.get("backupId")
        namespace = str(body.metadata.namespace)
        if not backup_id:
            return  # no backup was recorded; with no engine there is nothing to look it up in
        try:
            vault = open_vault(self.kube, namespace, vault_name, self.opener)
            if vault is None:
                message = (
                    f"BackupVault {vault_name} is gone: backup {backup_id} stays in its store, unreachable"
                )
                kopf.warn(body, reason="VaultMissing", message=message)
                return
            vault.delete_backup(backup_id)
        except BackupNotFound:
            return
        except VaultCheckFailed as failure:
            raise kopf.TemporaryError(f"delete backup {backup_id}: {failure.message}", delay=30) from None
        except VaultError as error:
            raise kopf.TemporaryError(f"delete backup {backup_id}: {error}", delay=30) from None


def register(registry: kopf.OperatorRegistry, controller: BackupController) -> None:
    """Register the Backup handlers in ``registry``."""
    on: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.resume(**on)
    @kopf.on.create(**on)
    def create_backup(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.reconcile(body, patch)

    @kopf.on.delete(**on)
    def delete_backup(
        body: kopf.Body, patch: kopf.Patch, retry: int, logger: logging.Logger, **_: Any
    ) -> None:
        controller.delete(body, patch, retry, logger)

    def creating(body: kopf.Body, **_: Any) -> bool:
        # kopf runs the timer only while this holds: most Backups are long done and cost nothing.
        return bool(body.status.get("backupArn")) and body.status.get("backupStatus") == BackupState.CREATING

    interval = controller.poll_interval

    @kopf.timer(**on, interval=interval, initial_delay=interval, when=creating)
    def poll_backup(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        if not body.metadata.get("deletionTimestamp"):
            controller.poll(body, patch)
