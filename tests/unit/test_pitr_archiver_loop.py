"""The archiver's loop tends each table from its row as it is at that moment, not as listed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from tablekeeper.vault.pitr import PitrService
from tablekeeper.vault.pitr_state import PitrState, TablePitr


def _row(table_id: str) -> TablePitr:
    return TablePitr(table_id=table_id, table_name=f"table-{table_id}",
                     table_arn=f"arn:aws:dynamodb:us-east-1:0:table/table-{table_id}",
                     enabled=True, period_days=35, window_start_ms=1_000, archived_seq=0)


@pytest.mark.asyncio
async def test_a_table_is_tended_from_its_current_row_after_the_tables_before_it_awaited(
    tmp_path: Path,
) -> None:
    # Tending table a awaits (a segment upload); meanwhile table b's first base completes. Tended
    # from the row listed before, b would look as if its first base had failed, and the archiver
    # would restart its window, moving EarliestRestorableDateTime.
    state = PitrState(tmp_path)
    state.put(_row("a"))
    state.put(_row("b"))
    tended: list[TablePitr] = []

    async def tend(record: TablePitr) -> None:
        tended.append(record)
        if record.table_id == "a":
            await asyncio.sleep(0)
            state.update("b", base_seq=7, base_ms=2_000, latest_ms=2_000)
        else:
            raise asyncio.CancelledError  # one pass is enough

    archiver = SimpleNamespace(state=state, _tend=tend, _note_problem=lambda *_: None, interval=0.01)
    with pytest.raises(asyncio.CancelledError):
        await PitrService.run(archiver)  # type: ignore[arg-type]
    assert [r.table_id for r in tended] == ["a", "b"]
    assert tended[1].base_seq == 7


@pytest.mark.asyncio
async def test_a_table_disabled_while_others_were_tended_is_not_tended(tmp_path: Path) -> None:
    state = PitrState(tmp_path)
    state.put(_row("a"))
    state.put(_row("b"))
    tended: list[str] = []

    async def tend(record: TablePitr) -> None:
        tended.append(record.table_id)
        if record.table_id == "a":
            state.update("b", enabled=False)
            state.update("a", enabled=False)  # the next pass has nothing to tend: stop there
            return

    archiver = SimpleNamespace(state=state, _tend=tend, _note_problem=lambda *_: None, interval=0.01)
    task = asyncio.create_task(PitrService.run(archiver))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tended == ["a"]
