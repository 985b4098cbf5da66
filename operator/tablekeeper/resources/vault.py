"""BackupVault: where backups and archived change logs live, and the key that seals them.

Write-once locks (governance/compliance, min/max retention) and a cold tier
are left out until the vault enforces them: a field that promises
protection nobody gives is worse than none, and adding an optional field
later is a compatible change.  They will come as ``spec.lock`` and
``spec.coldTier``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from tablekeeper.resources.common import (
    Model,
    ObjectName,
    PrinterColumn,
    Resource,
    ResourceKind,
    SecretKey,
    Status,
    cel,
    validations,
)

VAULT_URL_PATTERN = r"^(file:///[^?#]*|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?#]*)?)$"
_S3_ONLY = "s3 and credentialsSecretRef apply to s3:// URLs only"


class S3Settings(Model):
    """How to reach an S3-compatible store (AWS S3, MinIO, Ceph RGW, ...)."""

    endpoint: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    """The S3 endpoint URL, e.g. http://minio.storage.svc:9000; AWS S3 when left out."""
    region: str | None = Field(default=None, max_length=64)
    """The bucket's region, e.g. us-east-1."""
    force_path_style: bool = False
    """Address the bucket as endpoint/bucket instead of bucket.endpoint (most non-AWS stores need it)."""


class CredentialsSecretRef(Model):
    """A Secret holding S3 credentials."""

    name: ObjectName
    """The Secret's name, in this namespace."""
    access_key_id_key: SecretKey = "AWS_ACCESS_KEY_ID"
    """The key of the access key id in the Secret."""
    secret_access_key_key: SecretKey = "AWS_SECRET_ACCESS_KEY"
    """The key of the secret access key in the Secret."""


class KeySecretRef(Model):
    """A Secret holding the vault key: one line of base64 of 32 random bytes (openssl rand -base64 32)."""

    name: ObjectName
    """The Secret's name, in this namespace."""
    key: SecretKey = "vault.key"
    """The key of the vault key in the Secret."""


class BackupVaultSpec(Model):
    """A vault: the store's URL, how to reach it, and the key every object is encrypted with."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.url.startsWith('s3://') || (!has(self.s3) && !has(self.credentialsSecretRef))",
                _S3_ONLY,
            )
        )
    )

    url: str = Field(max_length=2048, pattern=VAULT_URL_PATTERN)
    """file:///absolute/path (a folder on the engine's volume) or s3://bucket/prefix."""
    s3: S3Settings | None = None
    """Endpoint, region and addressing for an s3:// URL."""
    credentials_secret_ref: CredentialsSecretRef | None = None
    """S3 credentials; the standard AWS chain (e.g. IRSA) when left out."""
    key_secret_ref: KeySecretRef
    """The vault key. Losing it loses every backup in the vault: keep a copy outside the cluster."""

    @model_validator(mode="after")
    def _s3_settings_need_s3(self) -> Self:
        if not self.url.startswith("s3://") and (
            self.s3 is not None or self.credentials_secret_ref is not None
        ):
            raise ValueError(_S3_ONLY)
        return self


class VaultPhase(StrEnum):
    """The vault's short state, for kubectl get."""

    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"


class BackupVaultStatus(Status):
    """Whether the vault works, as the operator's last probe found."""

    phase: VaultPhase | None = None
    """Pending, Ready or Failed."""
    ready: bool | None = None
    """Whether the last probe wrote, read and deleted an object in the store with this key."""
    message: str | None = Field(default=None, max_length=32768)
    """Why the vault is not ready, when it is not."""
    key_id: str | None = Field(default=None, max_length=64)
    """The vault key's id: a fingerprint, safe to show, that tells keys apart."""


class BackupVault(Resource):
    """Where backups live: an S3-compatible bucket or a folder, and the key that encrypts them."""

    kind: Literal["BackupVault"] = "BackupVault"
    spec: BackupVaultSpec
    status: BackupVaultStatus | None = None


BACKUP_VAULT = ResourceKind(
    model=BackupVault,
    spec=BackupVaultSpec,
    status=BackupVaultStatus,
    plural="backupvaults",
    short_names=("tkv",),
    columns=(PrinterColumn("URL", ".spec.url", description="Where the vault's objects live"),),
)
