"""Which of a plan rule's backups to delete, and whether a running backup missed its window.

Pure: the caller lists the facts about each Backup and passes ``now``.

Retention rules, for the backups of one rule, applied to each table's
backups apart (``keep_last: 3`` keeps three backups of every table):

* ``delete_after_days``: a backup is expired once ``now >= created + days``
  (its lifetime is the half-open ``[created, created + days)``).
* ``keep_last``: only the newest ``keep_last`` AVAILABLE backups are kept
  (newest by ``created``; ties broken by name). It must be at least 1.
* Both together: a backup goes when *either* rule says so.
* The newest AVAILABLE backup is kept even past ``delete_after_days`` while it
  is the only restorable one (``keep_newest_available``, on by default), so a
  schedule that has been failing for weeks does not turn into having no backup
  at all. The decision reports it, so the caller can warn.
* PENDING and CREATING backups are never deleted by retention, nor counted.
* FAILED, EXPIRED and CANCELLED backups hold no data: the newest
  ``failed_history`` of them are kept for people to inspect (like a CronJob's
  failedJobsHistoryLimit), the rest are deleted; all are deleted by age too.
* A deletion-protected (or vault-locked) backup is never deleted; it is
  reported as blocked instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class BackupStatus(StrEnum):
    PENDING = "PENDING"  # created, not started yet
    CREATING = "CREATING"  # started, not finished
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"  # not started within its start window
    CANCELLED = "CANCELLED"  # not finished within its completion window
    DELETING = "DELETING"


UNSUCCESSFUL = frozenset({BackupStatus.FAILED, BackupStatus.EXPIRED, BackupStatus.CANCELLED})


@dataclass(frozen=True)
class BackupFacts:
    """What retention and window checks need to know about one Backup (times are aware)."""

    name: str
    rule: str
    created: datetime  # the scheduled instant, or creation time for an on-demand run
    status: BackupStatus
    table: str = ""  # the table backed up; retention counts each table's backups apart
    started: datetime | None = None
    completed: datetime | None = None
    protected: bool = False  # deletion protection or a vault lock forbids deleting it now

    def __post_init__(self) -> None:
        # Accept the plain strings a status field holds ("AVAILABLE", ...).
        object.__setattr__(self, "status", BackupStatus(self.status))


@dataclass(frozen=True)
class RetentionPolicy:
    delete_after_days: int | None = None
    keep_last: int | None = None
    failed_history: int = 1
    keep_newest_available: bool = True

    def __post_init__(self) -> None:
        if self.delete_after_days is not None and self.delete_after_days < 1:
            raise ValueError(
                f"check retention: deleteAfterDays must be at least 1, got {self.delete_after_days}"
            )
        if self.keep_last is not None and self.keep_last < 1:
            raise ValueError(f"check retention: keepLast must be at least 1, got {self.keep_last}")
        if self.failed_history < 0:
            raise ValueError(
                f"check retention: failed history must not be negative, got {self.failed_history}"
            )


class DeleteReason(StrEnum):
    EXPIRED = "Expired"  # older than deleteAfterDays
    BEYOND_KEEP_LAST = "BeyondKeepLast"
    FAILED_HISTORY = "FailedHistoryLimit"  # an unsuccessful backup beyond failed_history


@dataclass(frozen=True)
class Deletion:
    name: str
    reason: DeleteReason


@dataclass(frozen=True)
class RetentionDecision:
    delete: tuple[Deletion, ...] = ()  # by table, oldest first
    blocked: tuple[Deletion, ...] = ()  # would be deleted, but protected
    kept_as_last: tuple[str, ...] = ()  # past deleteAfterDays, kept as their table's only AVAILABLE backup


def retention(backups: Iterable[BackupFacts], policy: RetentionPolicy, now: datetime) -> RetentionDecision:
    """Which of one rule's ``backups`` to delete at ``now``, and why (each table's apart)."""
    by_table: dict[str, list[BackupFacts]] = {}
    for backup in backups:
        by_table.setdefault(backup.table, []).append(backup)
    decisions = [_retain_table(group, policy, now) for _, group in sorted(by_table.items())]
    return RetentionDecision(
        delete=tuple(d for decision in decisions for d in decision.delete),
        blocked=tuple(d for decision in decisions for d in decision.blocked),
        kept_as_last=tuple(name for decision in decisions for name in decision.kept_as_last),
    )


def _retain_table(backups: list[BackupFacts], policy: RetentionPolicy, now: datetime) -> RetentionDecision:
    ordered = sorted(backups, key=lambda b: (b.created, b.name), reverse=True)  # newest first
    available = [b for b in ordered if b.status is BackupStatus.AVAILABLE]
    unsuccessful = [b for b in ordered if b.status in UNSUCCESSFUL]
    reasons: dict[str, DeleteReason] = {}
    for backup in (*available, *unsuccessful):
        if _expired(backup, policy, now):
            reasons[backup.name] = DeleteReason.EXPIRED
    if policy.keep_last is not None:
        for backup in available[policy.keep_last :]:
            reasons.setdefault(backup.name, DeleteReason.BEYOND_KEEP_LAST)
    for backup in unsuccessful[policy.failed_history :]:
        reasons.setdefault(backup.name, DeleteReason.FAILED_HISTORY)
    kept_as_last: tuple[str, ...] = ()
    if policy.keep_newest_available and available and all(b.name in reasons for b in available):
        kept_as_last = (available[0].name,)
        del reasons[available[0].name]
    doomed = [Deletion(b.name, reasons[b.name]) for b in reversed(ordered) if b.name in reasons]
    protected = {b.name for b in ordered if b.protected}
    return RetentionDecision(
        delete=tuple(d for d in doomed if d.name not in protected),
        blocked=tuple(d for d in doomed if d.name in protected),
        kept_as_last=kept_as_last,
    )


def _expired(backup: BackupFacts, policy: RetentionPolicy, now: datetime) -> bool:
    if policy.delete_after_days is None:
        return False
    return now >= backup.created + timedelta(days=policy.delete_after_days)


class WindowState(StrEnum):
    OK = "OK"
    EXPIRED = "EXPIRED"  # not started within the start window: mark it Expired
    CANCEL = "CANCEL"  # started, not finished within the completion window: cancel it


def window_state(
    backup: BackupFacts, start_window: timedelta, completion_window: timedelta, now: datetime
) -> WindowState:
    """Whether a backup still in flight has outrun its start or completion window.

    The start window counts from ``created`` (the scheduled instant), the
    completion window from ``started`` (as AWS Backup does); both are
    half-open, so at exactly the boundary the window has closed.
    """
    deadline = window_deadline(backup, start_window, completion_window)
    if deadline is None or now < deadline:
        return WindowState.OK
    return WindowState.EXPIRED if _started(backup) is None else WindowState.CANCEL


def window_deadline(
    backup: BackupFacts, start_window: timedelta, completion_window: timedelta
) -> datetime | None:
    """When the backup's current window closes (a timer's wake-up), or None when it is finished."""
    if backup.status not in (BackupStatus.PENDING, BackupStatus.CREATING):
        return None
    started = _started(backup)
    if started is None:
        return backup.created + start_window
    return started + completion_window


def _started(backup: BackupFacts) -> datetime | None:
    # A CREATING backup whose start time was not recorded started no later than it was created.
    if backup.started is None and backup.status is BackupStatus.CREATING:
        return backup.created
    return backup.started
