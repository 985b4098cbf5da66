"""Properties of the schedule, checked against a minute-by-minute scan of real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from tablekeeper.controllers.schedule import Schedule, due_runs, next_run, previous_run

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]  # Lord Howe shifts by 30 min
CRONS = ["30 2 * * *", "0 2 * * *", "15 1 * * *", "0 * * * *", "*/20 * * * *", "45 */2 * * *", "30 2 * * 0"]
# Days with DST changes in those zones, and an ordinary day.
DAYS = [
    datetime(2024, 3, 10, tzinfo=UTC),
    datetime(2024, 3, 31, tzinfo=UTC),
    datetime(2024, 4, 7, tzinfo=UTC),
    datetime(2024, 6, 15, tzinfo=UTC),
    datetime(2024, 10, 6, tzinfo=UTC),
    datetime(2024, 10, 27, tzinfo=UTC),
    datetime(2024, 11, 3, tzinfo=UTC),
]

schedules = st.builds(Schedule, st.sampled_from(CRONS), st.sampled_from(ZONES))
# Those that fire at least daily, so a minute-by-minute scan stays short.
frequent_schedules = st.builds(Schedule, st.sampled_from(CRONS[:-1]), st.sampled_from(ZONES))
instants = st.builds(
    lambda day, seconds: day + timedelta(seconds=seconds),
    st.sampled_from(DAYS),
    st.integers(-36 * 3600, 36 * 3600),
)


def fires_at(schedule: Schedule, minute: datetime) -> bool:
    """Independent reading of the DST rules, one real minute at a time."""
    zone = ZoneInfo(schedule.time_zone)
    local = minute.astimezone(zone)
    wall = local.replace(tzinfo=None, fold=0)
    if croniter.match(schedule.expression, wall):
        return schedule.follows_elapsed_time or local.fold == 0
    before = (minute - timedelta(minutes=1)).astimezone(zone)
    jump = local.utcoffset() - before.utcoffset()  # type: ignore[operator]
    if schedule.follows_elapsed_time or jump <= timedelta(0):
        return False
    # First minute after a gap: a fixed job fires here for any wall-clock time skipped.
    gap = [wall - jump + timedelta(minutes=m) for m in range(int(jump.total_seconds() // 60))]
    return any(croniter.match(schedule.expression, skipped) for skipped in gap)


def scan_next(schedule: Schedule, after: datetime) -> datetime:
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not fires_at(schedule, minute):
        minute += timedelta(minutes=1)
    return minute


@settings(max_examples=60, deadline=None)
@given(schedule=frequent_schedules, after=instants)
def test_next_run_is_the_first_firing_minute_strictly_after(schedule: Schedule, after: datetime) -> None:
    assert next_run(schedule, after) == scan_next(schedule, after)


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, at=instants)
def test_previous_and_next_run_bracket_any_instant(schedule: Schedule, at: datetime) -> None:
    before, after = previous_run(schedule, at), next_run(schedule, at)
    assert before <= at < after
    assert (next_run(schedule, before), previous_run(schedule, after)) == (after, after)


@settings(max_examples=150, deadline=None)
@given(
    schedule=schedules,
    now=instants,
    last_run_ago=st.none() | st.integers(0, 3 * 86400),
    window_minutes=st.integers(1, 600),
)
def test_due_run_is_new_and_inside_its_window(
    schedule: Schedule, now: datetime, last_run_ago: int | None, window_minutes: int
) -> None:
    created = now - timedelta(days=4)
    last_run = None if last_run_ago is None else now - timedelta(seconds=last_run_ago)
    window = timedelta(minutes=window_minutes)
    decision = due_runs(schedule, last_run, created, now, window)
    anchor = last_run or created
    if decision.start is not None:
        assert anchor < decision.start <= now < decision.start + window
        assert decision.last_run == decision.start
    assert all(anchor < missed <= now for missed in decision.missed)
    assert list(decision.missed) == sorted(set(decision.missed))
    assert decision.next_run > now
