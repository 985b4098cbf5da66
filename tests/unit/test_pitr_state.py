"""DATA/pitr.db: field updates never undo what another writer changed meanwhile."""

from __future__ import annotations

from pathlib import Path

from tablekeeper.vault.pitr_state import PitrState, TablePitr


def _record() -> TablePitr:
    return TablePitr(table_id="t1", table_name="orders",
                     table_arn="arn:aws:dynamodb:us-east-1:0:table/orders",
                     enabled=True, period_days=35, window_start_ms=1_000, archived_seq=10)


def test_an_update_keeps_a_deletion_recorded_after_the_updater_read_the_row(tmp_path: Path) -> None:
    # The archiver reads the row, awaits a segment upload, then records its progress; DeleteTable's
    # hook marked the table deleted during that await. The deletion must survive.
    state = PitrState(tmp_path)
    state.put(_record())
    read_before_the_await = state.get("t1")
    assert read_before_the_await is not None
    state.put(read_before_the_await.replace(deleted_ms=5_000))  # the hook, meanwhile
    state.update("t1", archived_seq=20)  # the archiver, after its await
    after = state.get("t1")
    assert after is not None and after.deleted_ms == 5_000 and after.archived_seq == 20


def test_updates_survive_reopening_the_state(tmp_path: Path) -> None:
    state = PitrState(tmp_path)
    state.put(_record())
    state.update("t1", latest_ms=9_000, problem="")
    state.close()
    reopened = PitrState(tmp_path).get("t1")
    assert reopened is not None and reopened.latest_ms == 9_000 and reopened.enabled is True


def test_an_update_of_an_unknown_table_changes_nothing(tmp_path: Path) -> None:
    state = PitrState(tmp_path)
    assert state.update("missing", archived_seq=1) is None
    assert state.all() == []
