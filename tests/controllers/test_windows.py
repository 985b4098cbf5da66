"""window_state: a backup not started within its start window expires; one not done in time is cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tablekeeper.controllers.retention import (
    BackupFacts,
    BackupStatus,
    WindowState,
    window_deadline,
    window_state,
)

SCHEDULED = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
STARTED = SCHEDULED + timedelta(minutes=20)
START_WINDOW = timedelta(hours=1)
COMPLETION_WINDOW = timedelta(hours=4)


def pending() -> BackupFacts:
    return BackupFacts("p", "daily", SCHEDULED, BackupStatus.PENDING)


def creating(started: datetime | None = STARTED) -> BackupFacts:
    return BackupFacts("c", "daily", SCHEDULED, BackupStatus.CREATING, started=started)


def state(backup: BackupFacts, now: datetime) -> WindowState:
    return window_state(backup, START_WINDOW, COMPLETION_WINDOW, now)


def test_pending_backup_inside_its_start_window_is_ok() -> None:
    assert state(pending(), SCHEDULED + timedelta(minutes=59)) is WindowState.OK


def test_pending_backup_at_exactly_the_end_of_its_start_window_is_expired() -> None:
    assert state(pending(), SCHEDULED + START_WINDOW) is WindowState.EXPIRED


def test_started_backup_is_not_expired_after_its_start_window() -> None:
    assert state(creating(), SCHEDULED + START_WINDOW + timedelta(minutes=1)) is WindowState.OK


def test_completion_window_counts_from_the_start() -> None:
    assert state(creating(), SCHEDULED + COMPLETION_WINDOW + timedelta(minutes=5)) is WindowState.OK


def test_creating_backup_at_exactly_the_end_of_its_completion_window_is_cancelled() -> None:
    assert state(creating(), STARTED + COMPLETION_WINDOW) is WindowState.CANCEL


def test_creating_backup_just_before_the_end_of_its_completion_window_is_ok() -> None:
    assert state(creating(), STARTED + COMPLETION_WINDOW - timedelta(microseconds=1)) is WindowState.OK


def test_creating_backup_without_a_start_time_counts_from_its_creation() -> None:
    assert state(creating(started=None), SCHEDULED + COMPLETION_WINDOW) is WindowState.CANCEL


def test_finished_backup_is_never_expired_or_cancelled() -> None:
    done = BackupFacts("d", "daily", SCHEDULED, BackupStatus.AVAILABLE, started=STARTED)
    assert state(done, SCHEDULED + timedelta(days=30)) is WindowState.OK


def test_deadline_of_a_pending_backup_is_the_end_of_its_start_window() -> None:
    assert window_deadline(pending(), START_WINDOW, COMPLETION_WINDOW) == SCHEDULED + START_WINDOW


def test_deadline_of_a_finished_backup_is_none() -> None:
    failed = BackupFacts("f", "daily", SCHEDULED, BackupStatus.FAILED)
    assert window_deadline(failed, START_WINDOW, COMPLETION_WINDOW) is None
