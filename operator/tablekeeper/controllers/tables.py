"""The Table controller: an engine per Table, the table in it, and the Table's status.

Handlers (``register``) are thin: read the object and the clock, call the
steps below, report.  A reconcile pass (create, resume, update):

1. parse the Table; an invalid spec is Degraded/InvalidSpec (refused, no retry);
2. refuse an immutable change (key schema, LSIs, table name, storage class);
3. with spec.backupVaultRef, wait (Progressing/VaultNotReady) until that
   BackupVault is Ready: the engine is built to run on it (``builders``), and
   naming another vault later changes the pod template, so the engine restarts
   on the new one;
4. ensure the children: the credentials Secret (created once with generated
   keys; AlreadyExists is success, an existing one is never regenerated), the
   two Services, the StatefulSet (created, or its mutable parts patched), and
   a grown volume;
5. talk to the engine (``EndpointResolver``): create the table if missing,
   then apply the planned changes (``table_plan``) one engine call at a time,
   coming back (``kopf.TemporaryError``) while the engine is not up yet or the
   table is busy.  A Table a Restore created (annotated
   ``tablekeeper.io/restore``) is never created here: the Restore's restore
   call creates it, so until the engine has it the Table waits
   (``WaitingForRestore``); to make such a Table create an empty table,
   remove the annotation;
6. report: conditions Ready/Progressing/Degraded, the phase, the endpoint,
   counts; an event on each condition transition.

A timer refreshes the status (item count, size, reachability) between passes.
The Backup and PitrConfig controllers reach a Table's engine through
``engine_of`` and judge a Table with ``table_problem`` and ``vault_mismatch``.

Deleting a Table deletes the table in its engine first (so point-in-time
recovery keeps the deleted table's archive, as DynamoDB does), then its
StatefulSet, Services and Secret.  The volume is kept unless the Table is
annotated ``tablekeeper.io/delete-volume: "true"`` (``builders.VolumePolicy``).
While spec.deletionProtection is true the Table is not deleted: the
finalizer stays, with a warning, until the protection is turned off.
A deletion that comes back with a stale body (kopf runs one at least once)
after its Table went does nothing: the engine and children under that name
may be a new Table's (``verdicts.outlived``).
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import kopf
import pydantic
from kubernetes.utils import parse_quantity

from tablekeeper.controllers import builders, conditions
from tablekeeper.controllers.builders import Credentials, EngineNames, EngineSettings
from tablekeeper.controllers.conditions import Transition
from tablekeeper.controllers.endpoints import EndpointResolver, ServiceEndpoints
from tablekeeper.controllers.engine_client import (
    ClientSettings,
    EngineBusy,
    EngineClient,
    EngineRefused,
    EngineUnavailable,
)
from tablekeeper.controllers.kube import (
    JSON_PATCH,
    PVCS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Kind,
    Kube,
    UsesKube,
)
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.controllers.naming import RESTORE_ANNOTATION
from tablekeeper.controllers.table_plan import Change, EngineTable, Plan, plan_changes
from tablekeeper.controllers.vaults import BACKUP_VAULTS, vault_problem
from tablekeeper.controllers.verdicts import (
    FALSE,
    TRUE,
    Clock,
    Reporter,
    Verdict,
    apply_verdict,
    moved_on,
    outlived,
    seen,
    utc_now,
)
from tablekeeper.resources.common import API_VERSION, GROUP, VERSION
from tablekeeper.resources.table import Table, TablePhase, TableSpec, TableStatus
from tablekeeper.resources.vault import BackupVaultSpec

KIND: Final = "Table"
PLURAL: Final = "tables"
TABLES: Final = Kind(API_VERSION, PLURAL)
MAX_PASSES: Final = 3  # plan-apply rounds in one handler call before coming back later
DELETE_ATTEMPTS_WITHOUT_ENGINE: Final = 6  # then the Table goes; its data stays on the volume
ARCHIVE_WAIT_ATTEMPTS: Final = 90  # polls for a deleted table's last PITR writes, then it goes anyway




# --- outcomes and the status they make (pure) -----------------------------------------------------


class Outcome(StrEnum):
    """How a pass ended; each is a reason word on the conditions."""

    INVALID_SPEC = "InvalidSpec"
    CHANGE_REFUSED = "ChangeRefused"
    VAULT_NOT_READY = "VaultNotReady"
    ENGINE_REFUSED = "EngineRefused"
    ENGINE_STARTING = "EngineStarting"
    ENGINE_UNAVAILABLE = "EngineUnavailable"
    CREDENTIALS_INVALID = "CredentialsInvalid"
    TABLE_MISSING = "TableMissing"
    RESTORING = "WaitingForRestore"
    CREATING = "TableCreating"
    UPDATING = "Updating"
    ACTIVE = "Active"
    DELETING = "Deleting"
    DELETION_PROTECTED = "DeletionProtected"


# The phase an outcome sets besides the conditions; None: Creating before the table was ever
# active, else Active.
VERDICTS: Final[Mapping[Outcome, tuple[Verdict, TablePhase | None]]] = {
    # A refusal leaves the table serving what it had: Ready keeps its value.
    Outcome.INVALID_SPEC: (Verdict(FALSE, FALSE, TRUE), TablePhase.FAILED),
    Outcome.CHANGE_REFUSED: (Verdict(None, FALSE, TRUE), TablePhase.FAILED),
    Outcome.ENGINE_REFUSED: (Verdict(None, FALSE, TRUE), TablePhase.FAILED),
    # Waiting for the BackupVault the Table names: an engine already running keeps serving.
    Outcome.VAULT_NOT_READY: (Verdict(None, TRUE, FALSE), None),
    Outcome.ENGINE_STARTING: (Verdict(FALSE, TRUE, FALSE), TablePhase.CREATING),
    # The phase is the table's lifecycle (DynamoDB's table stays ACTIVE while a node restarts);
    # whether it serves right now is Ready.
    Outcome.ENGINE_UNAVAILABLE: (Verdict(FALSE, FALSE, TRUE), None),
    Outcome.CREDENTIALS_INVALID: (Verdict(FALSE, FALSE, TRUE), None),
    Outcome.TABLE_MISSING: (Verdict(FALSE, FALSE, TRUE), TablePhase.FAILED),
    Outcome.RESTORING: (Verdict(FALSE, TRUE, FALSE), TablePhase.CREATING),
    Outcome.CREATING: (Verdict(FALSE, TRUE, FALSE), TablePhase.CREATING),
    Outcome.UPDATING: (Verdict(TRUE, TRUE, FALSE), TablePhase.UPDATING),
    Outcome.ACTIVE: (Verdict(TRUE, FALSE, FALSE), TablePhase.ACTIVE),
    Outcome.DELETING: (Verdict(FALSE, TRUE, FALSE), TablePhase.DELETING),
    Outcome.DELETION_PROTECTED: (Verdict(TRUE, FALSE, TRUE), TablePhase.DELETING),
}

# Verdicts only a new spec clears: the status timer leaves them alone.
STICKY: Final = frozenset({Outcome.INVALID_SPEC, Outcome.CHANGE_REFUSED, Outcome.ENGINE_REFUSED})


def status_after(
    outcome: Outcome, message: str, previous: Mapping[str, Any], generation: int | None, now: datetime,
    table: EngineTable | None = None,
) -> tuple[dict[str, Any], tuple[Transition, ...]]:
    """The status fields ``outcome`` sets on top of ``previous``, and the condition transitions."""
    verdict, wanted_phase = VERDICTS[outcome]
    old = conditions.conditions_from(previous.get("conditions"))
    new = apply_verdict(old, outcome.value, message, verdict, generation, now)
    was_active = previous.get("phase") in (TablePhase.ACTIVE, TablePhase.UPDATING)
    phase = wanted_phase or (TablePhase.ACTIVE if was_active else TablePhase.CREATING)
    fields = conditions.status_fields(generation, new, phase.value)
    if table is not None:
        fields.update(tableStatus=table.status, tableArn=table.arn, itemCount=table.item_count,
                      sizeBytes=table.size_bytes)  # fmt: skip
    return fields, conditions.transitions(old, new)


def timer_may_refresh(status: Mapping[str, Any]) -> bool:
    """Whether the status timer may report: not before the first pass, not while a pass is going on
    (Progressing), not over a verdict only a new spec clears (Degraded for a sticky reason)."""
    current = conditions.conditions_from(status.get("conditions"))
    progressing = conditions.find(current, conditions.PROGRESSING)
    degraded = conditions.find(current, conditions.DEGRADED)
    if progressing is None or progressing.status is not FALSE:
        return False
    return not (degraded is not None and degraded.status is TRUE and degraded.reason in STICKY)


def name_change(recorded_arn: str | None, table_name: str) -> str | None:
    """The refusal when the Table now names another table than the one it made (by its recorded ARN)."""
    if not recorded_arn or "table/" not in recorded_arn:
        return None
    made = recorded_arn.rsplit("table/", 1)[1]
    return None if made == table_name else f"the table name is immutable: this Table's table is {made}"


def volume_grows(current: str | None, wanted: str | int) -> bool:
    """Whether ``wanted`` is more than the PVC's ``current`` request (a volume never shrinks)."""
    return current is not None and parse_quantity(wanted) > parse_quantity(current)


def generate_credentials() -> Credentials:
    """A fresh key pair: an AWS-shaped access key id and a 40-character secret."""
    id_alphabet = string.ascii_uppercase + string.digits
    key_id = "TK" + "".join(secrets.choice(id_alphabet) for _ in range(18))
    return Credentials(key_id, secrets.token_urlsafe(30)[:40])


# --- a Table as the other controllers see it ---------------------------------------------------


def table_problem(table: Mapping[str, Any] | None, name: str) -> str | None:
    """Why a Table (as the API returns it) cannot serve a backup or PITR now; None when Active and Ready."""
    if table is None:
        return f"Table {name} does not exist"
    if (table.get("metadata") or {}).get("deletionTimestamp"):
        return f"Table {name} is being deleted"
    status = table.get("status") or {}
    phase = status.get("phase")
    if phase not in (TablePhase.ACTIVE, TablePhase.UPDATING):
        return f"Table {name} is {phase or 'not reported yet'}, not Active"
    ready = conditions.find(conditions.conditions_from(status.get("conditions")), conditions.READY)
    if ready is None or ready.status is not TRUE:
        return f"Table {name} is not Ready" + (f": {ready.message}" if ready and ready.message else "")
    return None


def vault_mismatch(table: Table, vault_name: str, what: str = "backups") -> str | None:
    """The refusal when the Table's engine does not keep its ``what`` in BackupVault ``vault_name``."""
    ref = table.spec.backup_vault_ref
    if ref is not None and ref.name == vault_name:
        return None
    holder = f"BackupVault {ref.name}" if ref is not None else "the folder vault on its own volume"
    return (
        f"Table {table.metadata.name} keeps its {what} in {holder}, not in BackupVault {vault_name}:"
        " a table's engine has one vault, its spec.backupVaultRef"
    )


def table_or_none(found: Mapping[str, Any] | None) -> Table | None:
    """The Table model of an object as the API returns it; None when there is none or it is invalid."""
    if found is None:
        return None
    try:
        return Table.model_validate(found)
    except pydantic.ValidationError:
        return None


# --- the controller -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSettings:
    engine: EngineSettings = field(default_factory=EngineSettings)
    resolver: EndpointResolver = field(default_factory=ServiceEndpoints)
    retry_delay: float = 10.0  # the engine not up yet
    poll_delay: float = 2.0  # the table busy with a change
    status_interval: float = 30.0

    @property
    def client(self) -> ClientSettings:
        return ClientSettings(retry_delay=self.retry_delay)


class Pass:
    """One handler call on one Table: its body, patch and clock, and what it reports."""

    def __init__(
        self, body: kopf.Body, patch: kopf.Patch, settings: TableSettings, metrics: Metrics | None,
        now: datetime,
    ) -> None:
        self.body, self.patch, self.settings, self.now = body, patch, settings, now
        self.namespace = str(body.metadata.namespace)
        self.name = str(body.metadata.name)
        self.generation: int | None = body.metadata.get("generation")
        self.reporter = Reporter(KIND, body, patch, TableStatus, metrics)

    def parse(self) -> Table:
        try:
            return Table.model_validate(dict(self.body))
        except pydantic.ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise self.refuse(Outcome.INVALID_SPEC, f"read Table: {problems}") from None

    @property
    def status(self) -> dict[str, Any]:
        return self.reporter.status  # as reported so far in this pass

    def report(self, outcome: Outcome, message: str = "", table: EngineTable | None = None) -> None:
        fields, changed = status_after(outcome, message, self.status, self.generation, self.now, table)
        names = EngineNames.of(self.name)
        endpoint = builders.service_endpoint(self.namespace, self.name, self.settings.engine.port)
        fields.update(endpoint=endpoint, credentialsSecret=names.secret)
        self.reporter.write(outcome.value, fields, changed)

    def refuse(self, outcome: Outcome, message: str) -> kopf.PermanentError:
        self.report(outcome, message)
        return kopf.PermanentError(message)

    def engine(self, kube: Kube, table_name: str) -> EngineClient:
        try:
            return engine_client(kube, self.settings, self.namespace, self.name, table_name)
        except ValueError as error:  # someone edited the Secret: retried, as it may be mended
            self.report(Outcome.CREDENTIALS_INVALID, str(error))
            raise kopf.TemporaryError(str(error), delay=self.settings.retry_delay) from None

    def vault(self, kube: Kube, table: Table) -> BackupVaultSpec | None:
        """The spec of the BackupVault the Table names, once it is Ready; None when it names none."""
        ref = table.spec.backup_vault_ref
        if ref is None:
            return None
        found = kube.get(BACKUP_VAULTS, self.namespace, ref.name)
        problem = vault_problem(found, ref.name)
        if problem is not None or found is None:
            message = f"waiting for BackupVault {ref.name}: {problem}"
            self.report(Outcome.VAULT_NOT_READY, message)
            raise kopf.TemporaryError(message, delay=self.settings.retry_delay)
        return BackupVaultSpec.model_validate(found["spec"])


def engine_client(
    kube: Kube, settings: TableSettings, namespace: str, name: str, table_name: str
) -> EngineClient:
    """A client of the engine of Table ``namespace/name`` (metadata.name), for its table ``table_name``.

    ``kopf.TemporaryError`` while the Table's credentials Secret does not exist yet; ValueError
    when it exists without usable credentials.
    """
    secret = kube.get(SECRETS, namespace, EngineNames.of(name).secret)
    if secret is None:
        raise kopf.TemporaryError(f"read credentials of Table {name}: no Secret yet", delay=1)
    credentials = builders.credentials_from_secret(secret)
    endpoint = settings.resolver(namespace, name)
    return EngineClient(endpoint, credentials, table_name, settings.client)


def engine_of(kube: Kube, settings: TableSettings, table: Table) -> EngineClient:
    """The engine of ``table`` for another kind's controller: ``kopf.TemporaryError`` while its
    credentials are missing or unusable (the Table controller reports that; come back later)."""
    namespace, name = str(table.metadata.namespace), str(table.metadata.name)
    try:
        return engine_client(kube, settings, namespace, name, table.table_name)
    except ValueError as error:
        raise kopf.TemporaryError(str(error), delay=settings.retry_delay) from None


def ensure_children(
    kube: Kube, table: Table, settings: EngineSettings, vault: BackupVaultSpec | None
) -> None:
    """The Secret, the Services and the StatefulSet exist and match the spec; a grown volume grows."""
    namespace, names = str(table.metadata.namespace), EngineNames.of(str(table.metadata.name))
    # Fresh keys each time, but create() never replaces an existing Secret: the first keys stay.
    kube.create(SECRETS, builders.credentials_secret(table, generate_credentials(), settings))
    kube.create(SERVICES, builders.headless_service(table, settings))
    kube.create(SERVICES, builders.client_service(table, settings))
    statefulset = builders.engine_statefulset(table, settings, vault)
    if not kube.create(STATEFULSETS, statefulset):
        patch = builders.mutable_statefulset_patch(statefulset)
        kube.patch(STATEFULSETS, namespace, names.statefulset, patch, JSON_PATCH)
    claim = kube.get(PVCS, namespace, names.volume_claim)
    if claim is not None:
        current = claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
        if volume_grows(current, table.spec.storage.size):
            kube.patch(PVCS, namespace, names.volume_claim, builders.volume_resize_patch(table))


def converge(run: Pass, client: EngineClient, spec: TableSpec, restore: str | None = None) -> None:
    """Create the table if missing (unless Restore ``restore`` makes it), then apply the plan; report,
    and come back while not done."""
    if restore is not None and client.describe() is None:
        message = f"waiting for Restore {restore} to create table {client.table_name}"
        run.report(Outcome.RESTORING, message)
        raise kopf.TemporaryError(message, delay=run.settings.poll_delay)
    created = client.ensure_table(spec)
    delay = run.settings.poll_delay
    for _ in range(MAX_PASSES):
        actual = client.describe()
        if actual is None:  # just created, or deleted behind our back: look again shortly
            run.report(Outcome.CREATING, f"creating table {client.table_name}")
            raise kopf.TemporaryError(f"describe table {client.table_name}: not there yet", delay=delay)
        refused = name_change(run.body.status.get("tableArn"), actual.name)
        plan = plan_changes(spec, actual)
        if refused or plan.refused:
            raise run.refuse(Outcome.CHANGE_REFUSED, "; ".join(filter(None, (refused, *plan.refused))))
        if plan.done:
            run.report(Outcome.ACTIVE, f"table {actual.name} is ACTIVE", actual)
            return
        if plan.busy:
            outcome = Outcome.CREATING if created or actual.status == "CREATING" else Outcome.UPDATING
            run.report(outcome, f"table {actual.name} is {actual.status}; waiting", actual)
            raise kopf.TemporaryError(f"table {actual.name} is busy", delay=delay)
        started = apply_plan(client, plan, actual.arn)
        if started is not None:
            run.report(Outcome.UPDATING, started, actual)
            raise kopf.TemporaryError(f"{started}: in progress", delay=delay)
    raise kopf.TemporaryError(f"table {client.table_name}: changes still pending", delay=delay)


def apply_plan(client: EngineClient, plan: Plan, arn: str) -> str | None:
    """Apply changes in order up to the first that starts work; that one's summary, or None."""
    for change in plan.changes:
        client.apply(change, arn)
        if change.starts_work:
            return change.summary
    return None


def delete_in_engine(client: EngineClient) -> None:
    """Delete the table; its protection, turned off in the spec while the Table was being deleted
    (no update pass runs then), is turned off in the engine first."""
    actual = client.describe()
    if actual is None:
        return
    if actual.deletion_protection:
        unprotect = Change("UpdateTable", {"DeletionProtectionEnabled": False}, "disable deletion protection")
        client.apply(unprotect, actual.arn)
    client.delete_table()


def archive_pending(client: EngineClient) -> bool:
    """Whether the engine is still shipping a just-deleted table's last writes to its PITR archive
    (its ``<table>$DeletedTableBackup`` is CREATING until the deletion is in the vault): the engine
    must live until then, or a restore of the deleted table would miss its last seconds."""
    return any(b.status == "CREATING" for b in client.find_backups(f"{client.table_name}$DeletedTableBackup"))


def refused_update(table: Table, old: Mapping[str, Any] | None) -> list[str]:
    """The immutable fields an update changed (the CRD's transition rules, checked again here)."""
    if not old or not old.get("spec"):
        return []
    try:
        old_spec = TableSpec.model_validate(old["spec"])
    except pydantic.ValidationError:
        return []  # the old spec was invalid: nothing of it was built
    refused = table.spec.refused_changes(old_spec)
    old_name = old_spec.table_name or table.metadata.name
    if old_name != table.table_name:
        refused.insert(0, "the table name is immutable")
    return refused


# --- handlers -------------------------------------------------------------------------------------


@dataclass
class TableController(UsesKube):
    settings: TableSettings
    kube_factory: Callable[[], Kube]
    metrics: Metrics | None = None
    clock: Clock = utc_now

    def reconcile(self, body: kopf.Body, patch: kopf.Patch, old: Mapping[str, Any] | None = None) -> None:
        run = Pass(body, patch, self.settings, self.metrics, self.clock())
        table = run.parse()
        refused = refused_update(table, old)
        if refused:
            raise run.refuse(Outcome.CHANGE_REFUSED, "; ".join(refused))
        vault = run.vault(self.kube, table)
        ensure_children(self.kube, table, self.settings.engine, vault)
        client = run.engine(self.kube, table.table_name)
        restore = (body.metadata.annotations or {}).get(RESTORE_ANNOTATION)
        try:
            converge(run, client, table.spec, restore)
        except EngineUnavailable as error:
            never_active = not body.status.get("tableArn")
            outcome = Outcome.ENGINE_STARTING if never_active else Outcome.ENGINE_UNAVAILABLE
            run.report(outcome, f"waiting for the engine: {error}")
            raise
        except EngineBusy as error:
            run.report(Outcome.UPDATING, str(error))
            raise
        except EngineRefused as error:
            run.report(Outcome.ENGINE_REFUSED, str(error))
            raise

    def refresh(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """Between passes: how the table is now (counts, reachability); never changes it."""
        if not timer_may_refresh(body.status) or body.metadata.get("deletionTimestamp"):
            return  # a handler owns the status until its pass is done
        start = seen(body)
        run = Pass(body, patch, self.settings, self.metrics, self.clock())
        run.reporter.only_if_unchanged_since(start)
        run.generation = body.status.get("observedGeneration")  # the spec acted on is still the old one
        table_name = body.spec.get("tableName") or run.name
        try:
            actual = run.engine(self.kube, table_name).describe()
        except (EngineUnavailable, EngineBusy) as error:
            actual, unavailable = None, error
        else:
            unavailable = None
        # The engine call took a while: a spec change may have come meanwhile, and its handler may
        # have reported already (a refusal, say). Writing then would put Active back over that
        # verdict for good. Compare the object as it is now with what this pass started from.
        if moved_on(start, self.kube.get(TABLES, run.namespace, run.name)):
            return
        if unavailable is not None:
            run.report(Outcome.ENGINE_UNAVAILABLE, f"the engine does not answer: {unavailable}")
        elif actual is None:
            run.report(Outcome.TABLE_MISSING, f"the engine has no table {table_name}")
        else:
            # ACTIVE even while the engine reports a change under way: no pass of ours is running
            # (UPDATING would keep this timer away for good); tableStatus shows the engine's word.
            run.report(Outcome.ACTIVE, f"table {actual.name} is {actual.status}", actual)

    def delete(self, body: kopf.Body, patch: kopf.Patch, retry: int, logger: logging.Logger) -> None:
        run = Pass(body, patch, self.settings, self.metrics, self.clock())
        if outlived(body, self.kube.get(TABLES, run.namespace, run.name)):
            # The engine and children under this name may be a new Table's now.
            logger.info("Table %s/%s already deleted; nothing to do", run.namespace, run.name)
            return
        try:
            table: Table | None = Table.model_validate(dict(body))
        except pydantic.ValidationError:
            table = None  # never built from: nothing in an engine to delete
        if table is not None and table.spec.deletion_protection:
            message = "deletion protection is on: set spec.deletionProtection to false to delete this Table"
            run.report(Outcome.DELETION_PROTECTED, message)
            # Looked at again at the status interval: the protection may be turned off meanwhile.
            raise kopf.TemporaryError(message, delay=self.settings.status_interval)
        run.report(Outcome.DELETING, f"deleting table {table.table_name if table else run.name}")
        if table is not None and self.kube.get(SECRETS, run.namespace, EngineNames.of(run.name).secret):
            try:
                client = run.engine(self.kube, table.table_name)
                delete_in_engine(client)
                if archive_pending(client):
                    if retry + 1 < ARCHIVE_WAIT_ATTEMPTS:
                        message = "waiting for the engine to archive the table's last writes (PITR)"
                        run.report(Outcome.DELETING, message)
                        raise kopf.TemporaryError(message, delay=self.settings.poll_delay)
                    message = "deleted before the engine archived the table's last writes: its PITR " \
                              "archive may end up to a few seconds before the deletion"
                    kopf.warn(body, reason="ArchiveIncomplete", message=message)
            except (EngineUnavailable, EngineBusy):
                if retry + 1 < DELETE_ATTEMPTS_WITHOUT_ENGINE:
                    raise
                message = "deleted without the engine: the table's data stays on its volume"
                kopf.warn(body, reason="EngineUnavailable", message=message)
            except EngineRefused as error:  # a refusal would release the Table silently: say so
                message = f"deleted; the engine kept the table: {error}"
                kopf.warn(body, reason="EngineRefused", message=message)
        self.remove_children(run.namespace, run.name, table)
        run.reporter.forget()
        logger.info("Table %s/%s deleted", run.namespace, run.name)

    def remove_children(self, namespace: str, name: str, table: Table | None) -> None:
        """What ownerReferences would collect anyway; removed now, and the volume as its policy says."""
        names = EngineNames.of(name)
        self.kube.delete(STATEFULSETS, namespace, names.statefulset)
        self.kube.delete(SERVICES, namespace, names.service)
        self.kube.delete(SERVICES, namespace, names.headless_service)
        self.kube.delete(SECRETS, namespace, names.secret)
        if table is not None and builders.volume_policy(table) is builders.VolumePolicy.DELETE:
            self.kube.delete(PVCS, namespace, names.volume_claim)


def register(registry: kopf.OperatorRegistry, controller: TableController) -> None:
    """Register the Table handlers in ``registry``."""
    on: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.resume(**on)
    @kopf.on.create(**on)
    @kopf.on.update(**on)
    def reconcile_table(body: kopf.Body, patch: kopf.Patch, old: Any = None, **_: Any) -> None:
        controller.reconcile(body, patch, old if isinstance(old, Mapping) else None)

    @kopf.on.delete(**on)
    def delete_table(
        body: kopf.Body, patch: kopf.Patch, retry: int, logger: logging.Logger, **_: Any
    ) -> None:
        controller.delete(body, patch, retry, logger)

    interval = controller.settings.status_interval

    @kopf.timer(**on, interval=interval, initial_delay=interval)
    def refresh_table_status(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.refresh(body, patch)
