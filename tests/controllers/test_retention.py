"""retention: which of a rule's backups to delete, by age and by count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tablekeeper.controllers.retention import (
    BackupFacts,
    BackupStatus,
    DeleteReason,
    Deletion,
    RetentionPolicy,
    retention,
)

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
AVAILABLE = BackupStatus.AVAILABLE


def backup(
    name: str,
    days_old: float,
    status: BackupStatus = AVAILABLE,
    protected: bool = False,
    table: str = "orders",
) -> BackupFacts:
    return BackupFacts(name, "daily", NOW - timedelta(days=days_old), status, table, protected=protected)


def deleted(decision_backups: list[BackupFacts], policy: RetentionPolicy) -> list[str]:
    return [d.name for d in retention(decision_backups, policy, NOW).delete]


def test_backup_older_than_delete_after_days_is_deleted_as_expired() -> None:
    decision = retention([backup("new", 1), backup("old", 8)], RetentionPolicy(delete_after_days=7), NOW)
    assert decision.delete == (Deletion("old", DeleteReason.EXPIRED),)


def test_backup_exactly_delete_after_days_old_is_expired() -> None:
    assert deleted([backup("new", 1), backup("edge", 7)], RetentionPolicy(delete_after_days=7)) == ["edge"]


def test_backup_just_younger_than_delete_after_days_is_kept() -> None:
    young = BackupFacts("young", "daily", NOW - timedelta(days=7) + timedelta(seconds=1), AVAILABLE)
    assert deleted([backup("new", 1), young], RetentionPolicy(delete_after_days=7)) == []


def test_keep_last_keeps_newest_available_backups() -> None:
    backups = [backup(f"b{age}", age) for age in (1, 2, 3, 4, 5)]
    decision = retention(backups, RetentionPolicy(keep_last=3), NOW)
    assert decision.delete == (
        Deletion("b5", DeleteReason.BEYOND_KEEP_LAST),
        Deletion("b4", DeleteReason.BEYOND_KEEP_LAST),
    )


def test_keep_last_breaks_ties_in_creation_time_by_name() -> None:
    backups = [backup("a", 1), backup("b", 1), backup("c", 1)]
    assert deleted(backups, RetentionPolicy(keep_last=2)) == ["a"]


def test_age_and_count_together_delete_what_either_rule_removes() -> None:
    backups = [backup(f"b{age}", age) for age in (1, 2, 3, 10, 20)]
    decision = retention(backups, RetentionPolicy(delete_after_days=15, keep_last=2), NOW)
    assert decision.delete == (
        Deletion("b20", DeleteReason.EXPIRED),
        Deletion("b10", DeleteReason.BEYOND_KEEP_LAST),
        Deletion("b3", DeleteReason.BEYOND_KEEP_LAST),
    )


def test_only_available_backups_count_towards_keep_last() -> None:
    backups = [backup("creating", 0, BackupStatus.CREATING), backup("failed", 0.5, BackupStatus.FAILED)]
    backups += [backup("b1", 1), backup("b2", 2)]
    assert deleted(backups, RetentionPolicy(keep_last=2)) == []


def test_creating_backups_are_never_deleted_even_when_old() -> None:
    backups = [backup("stuck", 30, BackupStatus.CREATING), backup("pending", 30, BackupStatus.PENDING)]
    assert deleted([*backups, backup("new", 1)], RetentionPolicy(delete_after_days=7, keep_last=1)) == []


def test_last_available_backup_is_kept_past_delete_after_days() -> None:
    decision = retention([backup("old", 40), backup("older", 50)], RetentionPolicy(delete_after_days=7), NOW)
    assert [d.name for d in decision.delete] == ["older"]
    assert decision.kept_as_last == ("old",)


def test_last_available_backup_goes_when_keeping_it_is_turned_off() -> None:
    policy = RetentionPolicy(delete_after_days=7, keep_newest_available=False)
    assert deleted([backup("old", 40)], policy) == ["old"]


def test_last_available_backup_is_not_kept_specially_while_a_newer_one_exists() -> None:
    decision = retention([backup("new", 1), backup("old", 40)], RetentionPolicy(delete_after_days=7), NOW)
    assert (decision.kept_as_last, [d.name for d in decision.delete]) == ((), ["old"])


def test_failed_backups_beyond_the_history_limit_are_deleted() -> None:
    backups = [backup("f1", 1, BackupStatus.FAILED), backup("e2", 2, BackupStatus.EXPIRED)]
    backups += [backup("c3", 3, BackupStatus.CANCELLED), backup("ok", 1)]
    decision = retention(backups, RetentionPolicy(), NOW)
    assert decision.delete == (
        Deletion("c3", DeleteReason.FAILED_HISTORY),
        Deletion("e2", DeleteReason.FAILED_HISTORY),
    )


def test_unsuccessful_backups_are_deleted_by_age_too() -> None:
    backups = [backup("failed", 10, BackupStatus.FAILED), backup("ok", 1)]
    assert deleted(backups, RetentionPolicy(delete_after_days=7, failed_history=5)) == ["failed"]


def test_unsuccessful_backup_never_counts_as_the_last_available_one() -> None:
    backups = [backup("failed", 10, BackupStatus.FAILED), backup("old", 10)]
    decision = retention(backups, RetentionPolicy(delete_after_days=7), NOW)
    assert (decision.kept_as_last, [d.name for d in decision.delete]) == (("old",), ["failed"])


def test_protected_backup_is_blocked_not_deleted() -> None:
    backups = [backup("new", 1), backup("locked", 30, protected=True)]
    decision = retention(backups, RetentionPolicy(delete_after_days=7), NOW)
    assert (decision.delete, decision.blocked) == ((), (Deletion("locked", DeleteReason.EXPIRED),))


def test_protected_backup_still_counts_towards_keep_last() -> None:
    backups = [backup("new", 1), backup("locked", 2, protected=True), backup("old", 3)]
    assert deleted(backups, RetentionPolicy(keep_last=2)) == ["old"]


def test_deleting_backups_are_left_alone() -> None:
    backups = [backup("going", 30, BackupStatus.DELETING), backup("new", 1)]
    assert deleted(backups, RetentionPolicy(delete_after_days=7, keep_last=1)) == []


def test_no_policy_deletes_nothing_available() -> None:
    assert deleted([backup(f"b{age}", age) for age in range(1, 50)], RetentionPolicy()) == []


@pytest.mark.parametrize(
    ("field", "value"), [("keep_last", 0), ("delete_after_days", 0), ("failed_history", -1)]
)
def test_nonsensical_policy_is_refused(field: str, value: int) -> None:
    with pytest.raises(ValueError, match="check retention"):
        RetentionPolicy(**{field: value})


def test_keep_last_counts_each_tables_backups_apart() -> None:
    backups = [backup(f"o{age}", age, table="orders") for age in (1, 2, 3)]
    backups += [backup(f"u{age}", age, table="users") for age in (1, 2, 3)]
    assert deleted(backups, RetentionPolicy(keep_last=2)) == ["o3", "u3"]


def test_each_table_keeps_its_last_available_backup() -> None:
    backups = [backup("o", 40, table="orders"), backup("u", 40, table="users")]
    decision = retention(backups, RetentionPolicy(delete_after_days=7), NOW)
    assert (decision.delete, decision.kept_as_last) == ((), ("o", "u"))


def test_plain_status_strings_are_accepted() -> None:
    plain = BackupFacts("old", "daily", NOW - timedelta(days=3), "AVAILABLE", "orders")  # type: ignore[arg-type]
    assert deleted([backup("new", 1), plain], RetentionPolicy(keep_last=1)) == ["old"]
