"""The BackupVault controller: whether a vault works, checked by the operator itself.

On create, update and resume, and again on a timer, the operator reads the
vault's key Secret and credentials Secret, checks that the key is one (a
line of base64 of 32 bytes, exactly what the engine accepts in its key
file), opens the store and probes it (``vault.store.probe``: a small object
written under ``_probe/``, read back and deleted; never table data).  The
status says the outcome: Ready True and phase Ready, or Ready False,
Degraded True with a precise reason and the error's message, and phase
Failed.  An event marks each transition.

Reasons: ``SecretMissing`` (a Secret the vault names does not exist),
``KeyInvalid`` (the key Secret lacks the key, or it is not one line of
base64 of 32 bytes), ``CredentialsInvalid`` (the credentials Secret lacks a
key), ``AccessDenied`` (the store refuses these credentials or this bucket),
``StoreUnreachable`` (the store does not answer), ``StoreFailed`` (anything
else the store or the folder refuses), ``InvalidSpec``.

A ``file://`` vault is a folder as the operator sees it; engines see the
same path in their own filesystem, so it is for machines where both share
one (tests, one node), or for a shared volume mounted at the same path.

Tables, Backups and PitrConfigs wait for a vault to be Ready
(``vault_problem``).  Deleting a BackupVault deletes nothing in the store;
it waits (a finalizer, as Kubernetes protects a PVC in use) while objects
still need it (``vault_users``): a Table, PitrConfig or BackupPlan using it,
a Restore reading from it that has not finished, and a Backup whose deletion
would delete its backup (even one being deleted: with its table gone it
deletes the backup through this object).  An ``InUse`` warning names them.
Deleting a whole namespace still ends: the users go first, then the vault.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import kopf
import pydantic

from tablekeeper.controllers import conditions
from tablekeeper.controllers.conditions import Transition
from tablekeeper.controllers.kube import SECRETS, Kind, Kube, UsesKube
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.controllers.verdicts import (
    FALSE,
    TRUE,
    Clock,
    Reporter,
    Verdict,
    apply_verdict,
    problems,
    utc_now,
)
from tablekeeper.resources.common import API_VERSION, GROUP, VERSION
from tablekeeper.resources.vault import (
    BackupVault,
    BackupVaultSpec,
    BackupVaultStatus,
    CredentialsSecretRef,
    KeySecretRef,
    VaultPhase,
)
from tablekeeper.vault.catalog import Vault
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.errors import StoreUnavailable, VaultError
from tablekeeper.vault.store import ObjectStore, open_store, probe

KIND: Final = "BackupVault"
PLURAL: Final = "backupvaults"
BACKUP_VAULTS: Final = Kind(API_VERSION, PLURAL)
KEY_BYTES: Final = 32
USERS: Final = (  # who may need a BackupVault: kind, plural
    ("Table", "tables"), ("PitrConfig", "pitrconfigs"), ("BackupPlan", "backupplans"),
    ("Backup", "backups"), ("Restore", "restores"),
)  # fmt: skip
KEY_HINT: Final = "a vault key is one line of base64 of 32 random bytes (openssl rand -base64 32)"

StoreOpener = Callable[..., ObjectStore]

logger = logging.getLogger(__name__)



class VaultOutcome(StrEnum):
    """How a check of the vault ended; each is a reason word on the conditions."""

    READY = "VaultReady"
    INVALID_SPEC = "InvalidSpec"
    SECRET_MISSING = "SecretMissing"
    KEY_INVALID = "KeyInvalid"
    CREDENTIALS_INVALID = "CredentialsInvalid"
    ACCESS_DENIED = "AccessDenied"
    STORE_UNREACHABLE = "StoreUnreachable"
    STORE_FAILED = "StoreFailed"


READY_VERDICT: Final = Verdict(TRUE, FALSE, FALSE)
FAILED_VERDICT: Final = Verdict(FALSE, FALSE, TRUE)

# The store's refusals of our credentials or our bucket, as the S3 store's messages name them:
# "verb what: detail (Code (status): message)".
REFUSAL_CODES: Final = (
    "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "TokenRefreshRequired", "InvalidToken", "NoSuchBucket",
)  # fmt: skip
_REFUSED = re.compile(r"\((?:" + "|".join(REFUSAL_CODES) + r")[ )]|forbidden \(403\)|no usable credentials")


class VaultCheckFailed(Exception):
    """The vault does not work: the outcome (a reason) and the message saying why."""

    def __init__(self, outcome: VaultOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


# --- decisions (pure) -----------------------------------------------------------------------------


def vault_problem(vault: Mapping[str, Any] | None, name: str) -> str | None:
    """Why a BackupVault object (as the API returns it) cannot be used now; None when it is Ready.

    Ready means: its Ready condition is True for its current generation (a vault whose spec
    changed since its last check is not Ready until checked again).
    """
    if vault is None:
        return f"BackupVault {name} does not exist"
    status = vault.get("status") or {}
    ready = conditions.find(conditions.conditions_from(status.get("conditions")), conditions.READY)
    if ready is None:
        return f"BackupVault {name} has not been checked yet"
    if ready.status is not TRUE:
        return f"BackupVault {name} is not ready: {ready.message or ready.reason}"
    generation = (vault.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return f"BackupVault {name} changed and has not been checked again yet"
    return None


def secret_value(secret: Mapping[str, Any], key: str) -> bytes | None:
    """The decoded value of ``key`` in a Secret as the API returns it (base64 data); None if absent."""
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_vault_key(raw: bytes, where: str) -> VaultKey:
    """The key in a key Secret's value, by the engine's key-file rules; ``VaultCheckFailed`` if none."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise VaultCheckFailed(VaultOutcome.KEY_INVALID, f"{where}: not text: {KEY_HINT}") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if len(lines) != 1:
        cause = "no key" if not lines else "more than one key line"
        raise VaultCheckFailed(VaultOutcome.KEY_INVALID, f"{where}: {cause}: {KEY_HINT}")
    try:
        secret = base64.b64decode(lines[0], validate=True)
    except (binascii.Error, ValueError):
        raise VaultCheckFailed(VaultOutcome.KEY_INVALID, f"{where}: not valid base64: {KEY_HINT}") from None
    if len(secret) != KEY_BYTES:
        message = f"{where}: the key is {len(secret)} bytes, not {KEY_BYTES}: {KEY_HINT}"
        raise VaultCheckFailed(VaultOutcome.KEY_INVALID, message)
    return VaultKey.from_secret(secret)


def store_outcome(error: VaultError) -> VaultOutcome:
    """The reason a store error gives: refused credentials or bucket, no answer, or anything else."""
    if isinstance(error, StoreUnavailable):
        refused = _REFUSED.search(str(error)) is not None
        return VaultOutcome.ACCESS_DENIED if refused else VaultOutcome.STORE_UNREACHABLE
    return VaultOutcome.STORE_FAILED


def vault_status_after(
    outcome: VaultOutcome, message: str, previous: Mapping[str, Any], generation: int | None, now: datetime,
    key_id: str | None = None,
) -> tuple[dict[str, Any], tuple[Transition, ...]]:  # fmt: skip
    """The status fields a check's ``outcome`` sets on top of ``previous``, and the transitions."""
    ready = outcome is VaultOutcome.READY
    old = conditions.conditions_from(previous.get("conditions"))
    verdict = READY_VERDICT if ready else FAILED_VERDICT
    new = apply_verdict(old, outcome.value, message, verdict, generation, now)
    phase = VaultPhase.READY if ready else VaultPhase.FAILED
    fields = conditions.status_fields(generation, new, phase.value)
    fields.update(ready=ready, message=None if ready else message[:32768])
    if key_id is not None:
        fields["keyId"] = key_id
    return fields, conditions.transitions(old, new)


# --- the check (reads Secrets, reaches the store) ------------------------------------------------


@dataclass(frozen=True)
class VaultAccess:
    """What opening a vault needs besides its spec: the key and the S3 credentials, if any."""

    key: VaultKey
    access_key_id: str | None = None
    secret_access_key: str | None = None


def read_access(kube: Kube, namespace: str, spec: BackupVaultSpec) -> VaultAccess:
    """The vault's key and S3 credentials from their Secrets; ``VaultCheckFailed`` saying what is wrong."""
    key = _read_key(kube, namespace, spec.key_secret_ref)
    if spec.credentials_secret_ref is None:
        return VaultAccess(key)
    key_id, secret_key = _read_credentials(kube, namespace, spec.credentials_secret_ref)
    return VaultAccess(key, key_id, secret_key)


def _read_secret(kube: Kube, namespace: str, name: str, what: str) -> dict[str, Any]:
    secret = kube.get(SECRETS, namespace, name)
    if secret is None:
        raise VaultCheckFailed(
            VaultOutcome.SECRET_MISSING, f"read {what} Secret {namespace}/{name}: not found"
        )
    return secret


def _read_key(kube: Kube, namespace: str, ref: KeySecretRef) -> VaultKey:
    secret = _read_secret(kube, namespace, ref.name, "key")
    where = f"read the vault key {ref.key!r} of Secret {namespace}/{ref.name}"
    raw = secret_value(secret, ref.key)
    if raw is None:
        raise VaultCheckFailed(VaultOutcome.KEY_INVALID, f"{where}: no such key in the Secret")
    return parse_vault_key(raw, where)


def _read_credentials(kube: Kube, namespace: str, ref: CredentialsSecretRef) -> tuple[str, str]:
    secret = _read_secret(kube, namespace, ref.name, "credentials")
    values = []
    for key in (ref.access_key_id_key, ref.secret_access_key_key):
        raw = secret_value(secret, key)
        text = raw.decode(errors="replace").strip() if raw is not None else ""
        if not text:
            message = f"read S3 credentials from Secret {namespace}/{ref.name}: no value for key {key!r}"
            raise VaultCheckFailed(VaultOutcome.CREDENTIALS_INVALID, message)
        values.append(text)
    return values[0], values[1]


def open_vault_store(
    spec: BackupVaultSpec, access: VaultAccess, opener: StoreOpener = open_store
) -> ObjectStore:
    """The vault's store, opened with its settings and credentials (not yet contacted)."""
    s3 = spec.s3
    try:
        return opener(
            spec.url,
            endpoint_url=s3.endpoint if s3 is not None else None,
            region=s3.region if s3 is not None else None,
            access_key_id=access.access_key_id,
            secret_access_key=access.secret_access_key,
        )
    except VaultError as error:
        raise VaultCheckFailed(VaultOutcome.STORE_FAILED, str(error)) from None


def check_vault(
    kube: Kube, namespace: str, spec: BackupVaultSpec, opener: StoreOpener = open_store
) -> VaultKey:
    """Check the vault end to end; its key when it works, else ``VaultCheckFailed``."""
    access = read_access(kube, namespace, spec)
    store = open_vault_store(spec, access, opener)
    try:
        probe(store)
    except VaultError as error:
        raise VaultCheckFailed(store_outcome(error), str(error)) from None
    return access.key


def open_vault(
    kube: Kube, namespace: str, name: str, opener: StoreOpener = open_store
) -> Vault | None:  # fmt: skip
    """The vault of BackupVault ``namespace/name``, opened with its key and credentials, for the
    operator's own use (deleting a backup whose engine is gone); None when no such BackupVault.

    ``VaultCheckFailed`` when its spec, Secrets or key are wrong; the store is not contacted.
    """
    found = kube.get(BACKUP_VAULTS, namespace, name)
    if found is None:
        return None
    try:
        spec = BackupVaultSpec.model_validate(found.get("spec") or {})
    except pydantic.ValidationError as error:
        raise VaultCheckFailed(
            VaultOutcome.INVALID_SPEC, f"read BackupVault {name}: {problems(error)}"
        ) from None
    access = read_access(kube, namespace, spec)
    return Vault(open_vault_store(spec, access, opener), access.key)


def _ref(obj: Mapping[str, Any], *path: str) -> str | None:
    found: Any = obj
    for step in path:
        found = found.get(step) if isinstance(found, Mapping) else None
    return found if isinstance(found, str) else None


def needs_vault(kind: str, obj: Mapping[str, Any], vault_name: str) -> bool:
    """Whether ``obj`` (of ``kind``) still needs BackupVault ``vault_name`` to exist."""
    leaving = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    spec = obj.get("spec") or {}
    if kind == "Backup":  # also while leaving: its deletion may delete the backup through the vault
        return _ref(spec, "vaultRef", "name") == vault_name and spec.get("deletionPolicy") != "Retain"
    if leaving:
        return False
    if kind == "Table":
        return _ref(spec, "backupVaultRef", "name") == vault_name
    if kind == "PitrConfig":
        return _ref(spec, "vaultRef", "name") == vault_name
    if kind == "BackupPlan":
        return any(_ref(rule, "targetVaultRef", "name") == vault_name for rule in spec.get("rules") or ())
    if kind == "Restore":
        finished = (obj.get("status") or {}).get("phase") in ("Completed", "Failed")
        source = spec.get("source") or {}
        refs = (_ref(source, "vaultBackup", "vaultRef", "name"),
                _ref(source, "pointInTime", "vaultRef", "name"))  # fmt: skip
        return not finished and vault_name in refs
    return False


def vault_users(vault_name: str, objects: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    """Who still needs the vault, as "Kind name", from the objects of each kind in its namespace."""
    return [
        f"{kind} {(obj.get('metadata') or {}).get('name')}"
        for kind, _plural in USERS
        for obj in objects.get(kind, ())
        if needs_vault(kind, obj, vault_name)
    ]


# --- the controller -------------------------------------------------------------------------------


@dataclass
class VaultController(UsesKube):
    kube_factory: Callable[[], Kube]
    interval: float = 300.0  # how often a vault is checked again
    retry_delay: float = 10.0  # how soon a vault that did not work is checked again by its handler
    metrics: Metrics | None = None
    clock: Clock = utc_now
    opener: StoreOpener = open_store

    def reconcile(
        self, body: kopf.Body, patch: kopf.Patch, logger: logging.Logger | None = None
    ) -> VaultOutcome:
        """Check the vault and report how it went."""
        reporter = Reporter(KIND, body, patch, BackupVaultStatus, self.metrics)
        generation: int | None = body.metadata.get("generation")
        now, namespace = self.clock(), str(body.metadata.namespace)
        key_id: str | None = None
        try:
            vault = BackupVault.model_validate(dict(body))
            key = check_vault(self.kube, namespace, vault.spec, self.opener)
        except pydantic.ValidationError as error:
            outcome, message = VaultOutcome.INVALID_SPEC, f"read BackupVault: {problems(error)}"
        except VaultCheckFailed as failure:
            outcome, message = failure.outcome, failure.message
        else:
            outcome, message, key_id = VaultOutcome.READY, f"probed {vault.spec.url}", key.key_id
        fields, changed = vault_status_after(outcome, message, reporter.status, generation, now, key_id)
        reporter.write(outcome.value, fields, changed)
        if logger is not None and changed:
            logger.info("BackupVault %s: %s: %s", reporter.key, outcome.value, message)
        return outcome

    def check(self, body: kopf.Body, patch: kopf.Patch, logger: logging.Logger) -> None:
        """The handlers' check: a vault that does not work yet is checked again after ``retry_delay``
        (its Secret may be created just after it); an invalid spec waits for a new one."""
        outcome = self.reconcile(body, patch, logger)
        if outcome is VaultOutcome.INVALID_SPEC:
            raise kopf.PermanentError(f"BackupVault {body.metadata.name}: invalid spec")
        if outcome is not VaultOutcome.READY:
            message = f"BackupVault {body.metadata.name} is not ready ({outcome.value}); checking again"
            raise kopf.TemporaryError(message, delay=self.retry_delay)

    def delete(self, body: kopf.Body, patch: kopf.Patch) -> None:
        """Let the BackupVault go once nothing needs it; until then warn and come back."""
        namespace, name = str(body.metadata.namespace), str(body.metadata.name)
        objects = {kind: self.kube.list(Kind(API_VERSION, plural), namespace) for kind, plural in USERS}
        users = vault_users(name, objects)
        if users:
            shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
            message = f"BackupVault {name} is still used by {shown}: it goes once they do"
            kopf.warn(body, reason="InUse", message=message)
            raise kopf.TemporaryError(message, delay=self.retry_delay)
        Reporter(KIND, body, patch, BackupVaultStatus, self.metrics).forget()


def register(registry: kopf.OperatorRegistry, controller: VaultController) -> None:
    """Register the BackupVault handlers in ``registry``."""
    on: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.resume(**on)
    @kopf.on.create(**on)
    @kopf.on.update(**on, field="spec")
    def check_backup_vault(body: kopf.Body, patch: kopf.Patch, logger: logging.Logger, **_: Any) -> None:
        controller.check(body, patch, logger)

    @kopf.timer(**on, interval=controller.interval, initial_delay=controller.interval)
    def recheck_backup_vault(body: kopf.Body, patch: kopf.Patch, logger: logging.Logger, **_: Any) -> None:
        if not body.metadata.get("deletionTimestamp"):
            controller.reconcile(body, patch, logger)

    @kopf.on.delete(**on)  # a finalizer: the vault stays while something needs it
    def delete_backup_vault(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        controller.delete(body, patch)
