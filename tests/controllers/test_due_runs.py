"""due_runs: which scheduled run a rule starts now, after downtime, overlaps, suspend and run-now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tablekeeper.controllers.schedule import MAX_REPORTED_MISSED, RunReason, Schedule, due_runs

DAILY = Schedule("0 2 * * *")
HOURLY = Schedule("0 * * * *")
CREATED = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_run_inside_its_start_window_starts() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 2, 5), WINDOW)
    assert (decision.start, decision.reason, decision.missed) == (utc(2024, 5, 1, 2), RunReason.DUE, ())


def test_started_run_becomes_last_run() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 2, 5), WINDOW)
    assert decision.last_run == utc(2024, 5, 1, 2)


def test_run_starts_at_exactly_its_scheduled_instant() -> None:
    assert due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 2), WINDOW).start == utc(2024, 5, 1, 2)


def test_nothing_starts_before_the_first_run() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 1, 59), WINDOW)
    assert (decision.start, decision.reason, decision.next_run) == (
        None,
        RunReason.NOT_DUE,
        utc(2024, 5, 1, 2),
    )


def test_run_scheduled_before_the_plan_existed_does_not_start() -> None:
    decision = due_runs(DAILY, None, utc(2024, 5, 1, 2, 10), utc(2024, 5, 1, 2, 20), WINDOW)
    assert (decision.start, decision.missed) == (None, ())


def test_overlapping_run_is_not_started_twice() -> None:
    # The 02:00 run was started; the controller wakes again inside the same window.
    decision = due_runs(DAILY, utc(2024, 5, 1, 2), CREATED, utc(2024, 5, 1, 2, 30), WINDOW)
    assert (decision.start, decision.reason, decision.last_run) == (
        None,
        RunReason.NOT_DUE,
        utc(2024, 5, 1, 2),
    )


def test_last_run_recorded_as_actual_start_time_still_prevents_a_second_start() -> None:
    decision = due_runs(DAILY, utc(2024, 5, 1, 2, 0, 7), CREATED, utc(2024, 5, 1, 2, 30), WINDOW)
    assert decision.start is None


def test_due_run_waits_while_the_previous_run_is_in_progress() -> None:
    decision = due_runs(HOURLY, utc(2024, 5, 1, 1), CREATED, utc(2024, 5, 1, 2, 10), WINDOW, in_progress=True)
    assert (decision.start, decision.reason) == (None, RunReason.PREVIOUS_RUN_IN_PROGRESS)
    assert (decision.last_run, decision.missed) == (utc(2024, 5, 1, 1), ())


def test_waiting_run_starts_when_the_previous_run_finishes_within_its_window() -> None:
    decision = due_runs(HOURLY, utc(2024, 5, 1, 1), CREATED, utc(2024, 5, 1, 2, 40), WINDOW)
    assert decision.start == utc(2024, 5, 1, 2)


def test_waiting_run_is_missed_once_its_start_window_closes() -> None:
    decision = due_runs(HOURLY, utc(2024, 5, 1, 1), CREATED, utc(2024, 5, 1, 2, 40), timedelta(minutes=30))
    assert (decision.start, decision.reason, decision.missed) == (
        None,
        RunReason.MISSED,
        (utc(2024, 5, 1, 2),),
    )


def test_start_window_is_closed_at_exactly_its_end() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 3), WINDOW)
    assert (decision.start, decision.missed) == (None, (utc(2024, 5, 1, 2),))


def test_start_window_is_open_just_before_its_end() -> None:
    now = utc(2024, 5, 1, 3) - timedelta(microseconds=1)
    assert due_runs(DAILY, None, CREATED, now, WINDOW).start == utc(2024, 5, 1, 2)


def test_missed_run_becomes_last_run_so_it_is_reported_once() -> None:
    first = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 4), WINDOW)
    again = due_runs(DAILY, first.last_run, CREATED, utc(2024, 5, 1, 5), WINDOW)
    assert (first.missed, again.missed) == ((utc(2024, 5, 1, 2),), ())


def test_missed_runs_after_downtime_start_only_latest_within_window() -> None:
    # Down from 02:30 to 05:20: the 03:00, 04:00 and 05:00 runs fell due; only 05:00 is still in its window.
    decision = due_runs(HOURLY, utc(2024, 5, 1, 2), CREATED, utc(2024, 5, 1, 5, 20), WINDOW)
    assert decision.start == utc(2024, 5, 1, 5)
    assert decision.missed == (utc(2024, 5, 1, 3), utc(2024, 5, 1, 4))
    assert decision.last_run == utc(2024, 5, 1, 5)


def test_long_downtime_reports_newest_missed_runs_and_flags_the_rest() -> None:
    # A month down with an hourly rule: about 720 missed runs; no burst of catch-up backups.
    decision = due_runs(HOURLY, utc(2024, 5, 1, 2), CREATED, utc(2024, 6, 1, 0, 30), WINDOW)
    assert decision.start == utc(2024, 6, 1, 0)
    assert len(decision.missed) == MAX_REPORTED_MISSED and decision.missed_truncated
    assert decision.missed[-1] == utc(2024, 5, 31, 23)


def test_long_downtime_past_every_window_starts_nothing_and_records_the_newest_missed() -> None:
    decision = due_runs(DAILY, utc(2024, 5, 1, 2), CREATED, utc(2024, 5, 20, 12), WINDOW)
    assert (decision.start, decision.reason) == (None, RunReason.MISSED)
    assert decision.last_run == utc(2024, 5, 20, 2) and decision.missed_truncated


def test_exactly_the_reporting_limit_of_missed_runs_is_not_truncated() -> None:
    now = utc(
        2024, 5, 1, 2 + MAX_REPORTED_MISSED, 30
    )  # runs 03:00 .. 02+N:00 all missed with a 10 min window
    decision = due_runs(HOURLY, utc(2024, 5, 1, 2), CREATED, now, timedelta(minutes=10))
    assert (len(decision.missed), decision.missed_truncated) == (MAX_REPORTED_MISSED, False)


def test_suspended_rule_starts_no_scheduled_run() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 2, 5), WINDOW, suspended=True)
    assert (decision.start, decision.reason, decision.missed) == (None, RunReason.SUSPENDED, ())
    assert decision.last_run is None


def test_run_scheduled_during_suspension_starts_on_resume_within_its_window() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 2, 40), WINDOW, suspended=False)
    assert decision.start == utc(2024, 5, 1, 2)


def test_new_run_now_token_is_reported() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 12), WINDOW, run_now="t2", handled_run_now="t1")
    assert decision.run_now == "t2"


def test_handled_run_now_token_is_not_reported_again() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 12), WINDOW, run_now="t1", handled_run_now="t1")
    assert decision.run_now is None


def test_empty_run_now_annotation_is_no_request() -> None:
    assert due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 12), WINDOW, run_now="").run_now is None


def test_run_now_is_honoured_while_suspended() -> None:
    decision = due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 12), WINDOW, suspended=True, run_now="t1")
    assert (decision.start, decision.run_now) == (None, "t1")


def test_run_now_does_not_move_the_schedule() -> None:
    decision = due_runs(DAILY, utc(2024, 5, 1, 2), CREATED, utc(2024, 5, 1, 12), WINDOW, run_now="t1")
    assert (decision.start, decision.last_run, decision.next_run) == (
        None,
        utc(2024, 5, 1, 2),
        utc(2024, 5, 2, 2),
    )


def test_dst_spring_forward_run_starts_at_the_end_of_the_gap() -> None:
    schedule = Schedule("30 2 * * *", "Europe/Berlin")
    created = utc(2024, 3, 1)
    assert due_runs(schedule, None, created, utc(2024, 3, 31, 0, 59), WINDOW).start is None
    assert due_runs(schedule, None, created, utc(2024, 3, 31, 1, 0), WINDOW).start == utc(2024, 3, 31, 1, 0)


def test_dst_fall_back_run_does_not_start_again_in_the_repeated_hour() -> None:
    schedule = Schedule("30 2 * * *", "Europe/Berlin")
    first = utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    decision = due_runs(schedule, first, utc(2024, 10, 1), utc(2024, 10, 27, 1, 45), timedelta(hours=2))
    assert (decision.start, decision.missed) == (None, ())


def test_non_positive_start_window_is_refused() -> None:
    with pytest.raises(ValueError, match="start window must be positive"):
        due_runs(DAILY, None, CREATED, utc(2024, 5, 1, 12), timedelta(0))
