"""The operator's client of one Table's engine: the few DynamoDB calls the controllers make.

A boto3 ``dynamodb`` client against the engine's endpoint, signed with the
Table's generated credentials.  This is the seam where engine and network
errors become kopf's:

* ``EngineUnavailable`` (a ``kopf.TemporaryError``): the engine does not
  answer yet (no pod, not ready, a connection refused or timed out) or
  answers with a server error;
* ``EngineBusy`` (a ``kopf.TemporaryError``): DynamoDB's "not now" —
  ResourceInUseException, LimitExceededException, throttling, a TTL change
  within an hour of the last one;
* ``EngineRefused`` (a ``kopf.PermanentError``): the engine refuses the
  request as invalid (ValidationException and other client errors): retrying
  the same spec cannot help.

Nothing here decides what to change: ``table_plan`` does; this carries it out.

Backups and point-in-time recovery (``create_backup``, ``describe_backup``,
``find_backups``, ``delete_backup``, ``update_pitr``, ``describe_pitr``)
go through the same translation; a backup or a PITR window comes back as a
frozen ``EngineBackup`` or ``EnginePitr``.  A missing backup is None (describe)
or False (delete), as a missing table is.

Restores (``restore_from_backup``, ``restore_to_point_in_time``) create the
client's table from a backup or a table's archive; ``describe_restore`` shows
it with its RestoreSummary as a frozen ``EngineRestore``.  A table of that name
appearing before the call is ``EngineBusy``: the next pass looks at it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3
import kopf
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tablekeeper.controllers.builders import Credentials
from tablekeeper.controllers.table_plan import Change, EngineTable, create_table_request
from tablekeeper.resources.table import TableSpec

REGION: Final = "us-east-1"  # the engine's default region; it names the ARNs
BUSY_ERRORS: Final = frozenset({
    "ResourceInUseException", "LimitExceededException", "ThrottlingException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "BackupInUseException",
    "ContinuousBackupsUnavailableException",
})  # fmt: skip
BACKUP_NOT_FOUND: Final = "BackupNotFoundException"
# Wrong credentials may be a pod still running with an older Secret: worth retrying.
RETRYABLE_ERRORS: Final = frozenset({"UnrecognizedClientException", "InvalidSignatureException"})
TOO_SOON: Final = "modified multiple times within a fixed interval"
TTL_RETRY_SECONDS: Final = 300.0


class EngineUnavailable(kopf.TemporaryError):
    """The engine did not answer, or answered with a server error."""


class EngineBusy(kopf.TemporaryError):
    """The engine asked to come back later."""


class EngineRefused(kopf.PermanentError):
    """The engine refused the request as invalid."""


@dataclass(frozen=True)
class ClientSettings:
    region: str = REGION
    connect_timeout: float = 3.0
    read_timeout: float = 20.0
    retry_delay: float = 10.0  # when the engine is unavailable or busy


@dataclass(frozen=True)
class EngineBackup:
    """A backup as the engine describes or lists it."""

    arn: str
    name: str
    status: str  # CREATING | AVAILABLE | DELETED | FAILED
    created: datetime
    size_bytes: int | None = None
    item_count: int | None = None  # DescribeBackup only
    table_arn: str | None = None
    reason: str = ""  # why it FAILED (the engine's BackupStatusReason)

    @property
    def backup_id(self) -> str:
        return self.arn.rpartition("/backup/")[2]

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> EngineBackup:
        """From DescribeBackup's BackupDescription."""
        details, source = description["BackupDetails"], description.get("SourceTableDetails", {})
        return cls(
            arn=details["BackupArn"], name=details["BackupName"], status=details["BackupStatus"],
            created=_aware(details["BackupCreationDateTime"]), size_bytes=details.get("BackupSizeBytes"),
            item_count=source.get("ItemCount"), table_arn=source.get("TableArn"),
            reason=str(details.get("BackupStatusReason", "")),
        )  # fmt: skip

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> EngineBackup:
        """From one of ListBackups' BackupSummaries."""
        return cls(
            arn=summary["BackupArn"], name=summary["BackupName"], status=summary["BackupStatus"],
            created=_aware(summary["BackupCreationDateTime"]), size_bytes=summary.get("BackupSizeBytes"),
            table_arn=summary.get("TableArn"),
        )  # fmt: skip


@dataclass(frozen=True)
class EnginePitr:
    """A table's point-in-time recovery as DescribeContinuousBackups reports it."""

    enabled: bool
    recovery_period_in_days: int | None = None
    earliest: datetime | None = None
    latest: datetime | None = None

    @classmethod
    def from_wire(cls, description: Mapping[str, Any]) -> EnginePitr:
        pitr = description.get("PointInTimeRecoveryDescription", {})
        earliest, latest = pitr.get("EarliestRestorableDateTime"), pitr.get("LatestRestorableDateTime")
        return cls(
            enabled=pitr.get("PointInTimeRecoveryStatus") == "ENABLED",
            recovery_period_in_days=pitr.get("RecoveryPeriodInDays"),
            earliest=_aware(earliest) if earliest is not None else None,
            latest=_aware(latest) if latest is not None else None,
        )


@dataclass(frozen=True)
class EngineRestore:
    """A table as DescribeTable shows it, with where it was restored from (its RestoreSummary)."""

    name: str
    arn: str
    status: str  # CREATING while a restore loads it, then ACTIVE
    item_count: int
    in_progress: bool | None = None  # None: no RestoreSummary, the table was not restored
    source_backup_arn: str | None = None
    source_table_arn: str | None = None
    restore_time: datetime | None = None  # the moment restored to (a backup: when its restore began)

    @property
    def restored(self) -> bool:
        """Whether the table was restored and every item is in: ACTIVE, the restore no longer in progress."""
        return self.in_progress is False and self.status == "ACTIVE"

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> EngineRestore:
        """From DescribeTable's Table (as boto3 parses it)."""
        summary = description.get("RestoreSummary")
        when = (summary or {}).get("RestoreDateTime")
        return cls(
            name=description["TableName"], arn=description.get("TableArn", ""),
            status=description.get("TableStatus", ""), item_count=int(description.get("ItemCount", 0)),
            in_progress=None if summary is None else bool(summary.get("RestoreInProgress")),
            source_backup_arn=(summary or {}).get("SourceBackupArn"),
            source_table_arn=(summary or {}).get("SourceTableArn"),
            restore_time=_aware(when) if isinstance(when, datetime) else None,
        )  # fmt: skip


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _keep_backup_status_reason(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    """botocore drops members its model lacks: put the engine's BackupStatusReason back."""
    details = parsed.get("BackupDescription", {}).get("BackupDetails")
    if details is None or getattr(http_response, "status_code", 0) != 200:
        return
    try:
        raw = json.loads(http_response.content or b"{}")
    except ValueError:
        return
    reason = raw.get("BackupDescription", {}).get("BackupDetails", {}).get("BackupStatusReason")
    if reason:
        details["BackupStatusReason"] = str(reason)


_clients: dict[tuple[str, str, str, str], Any] = {}
_clients_lock = threading.Lock()


def _boto_client(endpoint: str, credentials: Credentials, settings: ClientSettings) -> Any:
    # boto3 clients are thread-safe and slow to build: one per endpoint and key pair.
    key = (endpoint, credentials.access_key_id, credentials.secret_access_key, settings.region)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = boto3.session.Session().client(
                "dynamodb",
                endpoint_url=endpoint,
                region_name=settings.region,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                config=Config(
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    retries={"max_attempts": 1, "mode": "standard"},  # kopf retries, with backoff
                ),
            )
            client.meta.events.register("after-call.dynamodb.DescribeBackup", _keep_backup_status_reason)
            _clients[key] = client
        return client


class EngineClient:
    """One table in one engine, as the operator sees it."""

    def __init__(
        self, endpoint: str, credentials: Credentials, table_name: str, settings: ClientSettings | None = None
    ) -> None:
        self.endpoint = endpoint
        self.table_name = table_name
        self.settings = settings or ClientSettings()
        self._client = _boto_client(endpoint, credentials, self.settings)

    def _describe_table(self) -> dict[str, Any] | None:
        """DescribeTable's ``Table``, or None when the engine has no such table."""
        with self._translated("describe table"):
            try:
                return self._client.describe_table(TableName=self.table_name)["Table"]  # type: ignore[no-any-return]
            except ClientError as error:
                if _code(error) == "ResourceNotFoundException":
                    return None
                raise

    def describe(self) -> EngineTable | None:
        """The table as the engine has it, or None when the engine has no such table."""
        description = self._describe_table()
        if description is None:
            return None
        with self._translated("describe table"):
            ttl = None
            # DynamoDB refuses DescribeTimeToLive while the table is CREATING (a restore filling it) or
            # DELETING; a busy table's TTL is not compared anyway.
            if description.get("TableStatus") not in ("CREATING", "DELETING"):
                ttl = self._client.describe_time_to_live(TableName=self.table_name)["TimeToLiveDescription"]
            tags = self._tags(description["TableArn"])
        return EngineTable.from_wire(description, ttl, tags)

    def _tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        request: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = self._client.list_tags_of_resource(**request)
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", ())})
            if not page.get("NextToken"):
                return tags
            request["NextToken"] = page["NextToken"]

    def ensure_table(self, spec: TableSpec) -> bool:
        """Create the table unless it exists; True when this call created it."""
        if self.describe() is not None:
            return False
        with self._translated("create table"):
            try:
                self._client.create_table(**create_table_request(spec, self.table_name))
            except ClientError as error:
                if _code(error) == "ResourceInUseException":  # created meanwhile: as good
                    return False
                raise
        return True

    def apply(self, change: Change, arn: str) -> None:
        """Carry out one planned change."""
        request = dict(change.request)
        if change.operation in ("TagResource", "UntagResource"):
            request["ResourceArn"] = arn
        else:
            request["TableName"] = self.table_name
        call = getattr(self._client, _snake(change.operation))
        with self._translated(change.summary):
            call(**request)

    def delete_table(self) -> bool:
        """Delete the table; False when there was none."""
        with self._translated("delete table"):
            try:
                self._client.delete_table(TableName=self.table_name)
            except ClientError as error:
                if _code(error) == "ResourceNotFoundException":
                    return False
                raise
        return True

    # --- backups ---------------------------------------------------------------------------------

    def create_backup(self, backup_name: str) -> EngineBackup:
        """Start a backup of the table named ``backup_name``; the engine writes it in the background."""
        with self._translated(f"create backup {backup_name} of table"):
            details = self._client.create_backup(TableName=self.table_name, BackupName=backup_name)
        return EngineBackup.from_summary(details["BackupDetails"])

    def describe_backup(self, arn: str) -> EngineBackup | None:
        """The backup ``arn`` names, or None when the engine has no such backup."""
        with self._translated(f"describe backup {arn} of table"):
            try:
                description = self._client.describe_backup(BackupArn=arn)["BackupDescription"]
            except ClientError as error:
                if _code(error) == BACKUP_NOT_FOUND:
                    return None
                raise
        return EngineBackup.from_description(description)

    def find_backups(self, backup_name: str) -> list[EngineBackup]:
        """The table's backups named ``backup_name`` (DynamoDB allows several), oldest first."""
        found: list[EngineBackup] = []
        request: dict[str, Any] = {"TableName": self.table_name, "BackupType": "ALL"}
        with self._translated(f"list backups {backup_name} of table"):
            while True:
                page = self._client.list_backups(**request)
                found.extend(EngineBackup.from_summary(s) for s in page.get("BackupSummaries", ()))
                if not page.get("LastEvaluatedBackupArn"):
                    break
                request["ExclusiveStartBackupArn"] = page["LastEvaluatedBackupArn"]
        return sorted((b for b in found if b.name == backup_name), key=lambda b: b.created)

    def delete_backup(self, arn: str) -> bool:
        """Delete the backup ``arn`` names; False when there was none."""
        with self._translated(f"delete backup {arn} of table"):
            try:
                self._client.delete_backup(BackupArn=arn)
            except ClientError as error:
                if _code(error) == BACKUP_NOT_FOUND:
                    return False
                raise
        return True

    # --- restores -----------------------------------------------------------------------------------

    def describe_restore(self) -> EngineRestore | None:
        """The table with its RestoreSummary, or None when the engine has no such table."""
        description = self._describe_table()
        return None if description is None else EngineRestore.from_description(description)

    def restore_from_backup(self, backup_arn: str, overrides: Mapping[str, Any]) -> EngineRestore:
        """Start restoring the backup ``backup_arn`` into the table (RestoreTableFromBackup with
        ``overrides``, DynamoDB's members); the engine loads the items in the background."""
        request = {"TargetTableName": self.table_name, "BackupArn": backup_arn, **overrides}
        with self._translated(f"restore backup {backup_arn} into table"), self._new_table():
            answer = self._client.restore_table_from_backup(**request)
        return EngineRestore.from_description(answer["TableDescription"])

    def restore_to_point_in_time(
        self, source_table_arn: str, when: datetime | None, overrides: Mapping[str, Any]
    ) -> EngineRestore:
        """Start restoring table ``source_table_arn`` as of ``when`` (None: its latest restorable
        time) into the table (RestoreTableToPointInTime with ``overrides``)."""
        request: dict[str, Any] = {"TargetTableName": self.table_name, "SourceTableArn": source_table_arn,
                                   **overrides}  # fmt: skip
        if when is None:
            request["UseLatestRestorableTime"] = True
        else:
            request["RestoreDateTime"] = when
        with self._translated(f"restore {source_table_arn} into table"), self._new_table():
            answer = self._client.restore_table_to_point_in_time(**request)
        return EngineRestore.from_description(answer["TableDescription"])

    @contextmanager
    def _new_table(self) -> Iterator[None]:
        """A table of the target's name made since we looked: busy, the next pass looks at it."""
        try:
            yield
        except ClientError as error:
            if _code(error) in ("TableAlreadyExistsException", "ResourceInUseException"):
                where = f"create table {self.table_name} at {self.endpoint}"
                raise EngineBusy(f"{where}: it exists now; looking at it again",
                                 delay=self.settings.retry_delay) from error
            raise

    # --- point-in-time recovery -------------------------------------------------------------------

    def describe_pitr(self) -> EnginePitr:
        """The table's point-in-time recovery: on or off, and the restorable window."""
        with self._translated("describe continuous backups of table"):
            answer = self._client.describe_continuous_backups(TableName=self.table_name)
        return EnginePitr.from_wire(answer["ContinuousBackupsDescription"])

    def update_pitr(self, enabled: bool, recovery_period_in_days: int | None = None) -> EnginePitr:
        """Turn point-in-time recovery on (with the period, when given) or off."""
        specification: dict[str, Any] = {"PointInTimeRecoveryEnabled": enabled}
        if enabled and recovery_period_in_days is not None:
            specification["RecoveryPeriodInDays"] = recovery_period_in_days
        verb = "enable" if enabled else "disable"
        with self._translated(f"{verb} point-in-time recovery of table"):
            answer = self._client.update_continuous_backups(
                TableName=self.table_name, PointInTimeRecoverySpecification=specification
            )
        return EnginePitr.from_wire(answer["ContinuousBackupsDescription"])

    @contextmanager
    def _translated(self, verb: str) -> Iterator[None]:
        """Engine and network errors as kopf's, with messages "verb table: cause"."""
        where = f"{verb} {self.table_name} at {self.endpoint}"
        delay = self.settings.retry_delay
        try:
            yield
        except ClientError as error:
            code, message = _code(error), error.response.get("Error", {}).get("Message", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in BUSY_ERRORS:
                raise EngineBusy(f"{where}: {code}: {message}", delay=delay) from error
            if TOO_SOON in message:
                raise EngineBusy(f"{where}: {message}", delay=max(delay, TTL_RETRY_SECONDS)) from error
            if code in RETRYABLE_ERRORS or status >= 500:
                raise EngineUnavailable(f"{where}: {code}: {message}", delay=delay) from error
            raise EngineRefused(f"{where}: {code}: {message}") from error
        except BotoCoreError as error:  # connection refused, timeouts, DNS: no engine (yet)
            raise EngineUnavailable(f"{where}: {error}", delay=delay) from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
