"""next_run / previous_run / seconds_until_next: cron in a time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from tablekeeper.controllers.schedule import Schedule, next_run, previous_run, seconds_until_next

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def runs_between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    runs, point = [], start
    while (point := next_run(schedule, point)) < end:
        runs.append(point)
    return runs


def local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M%z")


def test_daily_utc_rule_runs_at_its_time() -> None:
    assert next_run(Schedule("30 2 * * *"), utc(2024, 5, 1, 12)) == utc(2024, 5, 2, 2, 30)


def test_next_run_is_strictly_after_a_run_instant() -> None:
    assert next_run(Schedule("30 2 * * *"), utc(2024, 5, 2, 2, 30)) == utc(2024, 5, 3, 2, 30)


def test_rule_is_read_in_its_time_zone() -> None:
    # 02:30 in New York in May is 06:30 UTC (EDT, UTC-4).
    assert next_run(Schedule("30 2 * * *", "America/New_York"), utc(2024, 5, 1, 12)) == utc(2024, 5, 2, 6, 30)


def test_result_is_utc_for_an_aware_non_utc_input() -> None:
    after = datetime(2024, 5, 1, 14, 0, tzinfo=BERLIN)
    result = next_run(Schedule("0 * * * *"), after)
    assert result == utc(2024, 5, 1, 13) and result.tzinfo is UTC


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(Schedule("0 * * * *"), datetime(2024, 5, 1))


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (BERLIN, (2024, 3, 31), "2024-03-31 03:00+0200"),
        (NEW_YORK, (2024, 3, 10), "2024-03-10 03:00-0400"),
    ],
)
def test_daily_run_on_spring_forward_day_runs_once_at_the_end_of_the_gap(
    zone: ZoneInfo, day: tuple[int, int, int], expected: str
) -> None:
    schedule = Schedule("30 2 * * *", zone.key)
    start = datetime(*day, tzinfo=zone) - timedelta(days=1)
    runs = runs_between(schedule, start, start + timedelta(days=3))
    assert [local(run, zone) for run in runs if run.astimezone(zone).date() == datetime(*day).date()] == [
        expected
    ]
    assert len(runs) == 3


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (BERLIN, (2024, 10, 27), "2024-10-27 02:30+0200"),
        (NEW_YORK, (2024, 11, 3), "2024-11-03 01:30-0400"),
    ],
)
def test_daily_run_on_fall_back_day_runs_once_at_the_first_occurrence(
    zone: ZoneInfo, day: tuple[int, int, int], expected: str
) -> None:
    # The repeated hour is 02:00-03:00 in Berlin and 01:00-02:00 in New York.
    time = "30 2 * * *" if zone is BERLIN else "30 1 * * *"
    schedule = Schedule(time, zone.key)
    start = datetime(*day, tzinfo=zone) - timedelta(days=1)
    runs = runs_between(schedule, start, start + timedelta(days=3))
    assert [local(run, zone) for run in runs if run.astimezone(zone).date() == datetime(*day).date()] == [
        expected
    ]
    assert len(runs) == 3


def test_daily_runs_keep_local_time_across_dst() -> None:
    schedule = Schedule("0 9 * * *", "Europe/Berlin")
    runs = runs_between(schedule, utc(2024, 3, 29), utc(2024, 4, 2))
    assert [run.hour for run in runs] == [8, 8, 7, 7]  # 09:00 CET is 08:00 UTC, 09:00 CEST is 07:00 UTC


@pytest.mark.parametrize(("zone", "day"), [(BERLIN, (2024, 3, 31)), (NEW_YORK, (2024, 3, 10))])
def test_hourly_rule_on_spring_forward_day_runs_23_times(zone: ZoneInfo, day: tuple[int, int, int]) -> None:
    start = datetime(*day, tzinfo=zone)
    runs = runs_between(
        Schedule("0 * * * *", zone.key), start - timedelta(seconds=1), start + timedelta(days=1)
    )
    assert len(runs) == 23
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(runs))


@pytest.mark.parametrize(("zone", "day"), [(BERLIN, (2024, 10, 27)), (NEW_YORK, (2024, 11, 3))])
def test_hourly_rule_on_fall_back_day_runs_every_elapsed_hour(
    zone: ZoneInfo, day: tuple[int, int, int]
) -> None:
    start = datetime(*day, tzinfo=zone)
    end = datetime(*day, tzinfo=zone) + timedelta(days=1)  # wall-clock midnight to midnight: 25 hours
    runs = runs_between(Schedule("0 * * * *", zone.key), start - timedelta(seconds=1), end)
    assert len(runs) == 25
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(runs))


def test_half_hourly_rule_skips_the_missing_hour_without_an_extra_run() -> None:
    schedule = Schedule("30 * * * *", "Europe/Berlin")
    runs = runs_between(schedule, utc(2024, 3, 30, 23), utc(2024, 3, 31, 3))
    assert [local(run, BERLIN) for run in runs] == [
        "2024-03-31 00:30+0100",
        "2024-03-31 01:30+0100",
        "2024-03-31 03:30+0200",
        "2024-03-31 04:30+0200",
    ]


def test_next_run_from_inside_the_repeated_hour_finds_its_second_copy() -> None:
    # 02:15 CEST; the next "0 * * * *" run is 02:00 CET, which is earlier on the wall clock.
    after = utc(2024, 10, 27, 0, 15)
    assert local(next_run(Schedule("0 * * * *", "Europe/Berlin"), after), BERLIN) == "2024-10-27 02:00+0100"


def test_weekly_rule_runs_on_its_weekday() -> None:
    schedule = Schedule("0 3 * * 1", "America/New_York")  # Mondays 03:00
    runs = runs_between(schedule, utc(2024, 3, 1), utc(2024, 3, 29))
    assert [local(run, NEW_YORK) for run in runs] == [
        "2024-03-04 03:00-0500",
        "2024-03-11 03:00-0400",
        "2024-03-18 03:00-0400",
        "2024-03-25 03:00-0400",
    ]


def test_weekly_alias_runs_sunday_midnight() -> None:
    assert next_run(Schedule("@weekly"), utc(2024, 5, 1)) == utc(2024, 5, 5)


def test_previous_run_includes_an_exact_match() -> None:
    assert previous_run(Schedule("30 2 * * *"), utc(2024, 5, 2, 2, 30)) == utc(2024, 5, 2, 2, 30)


def test_previous_run_on_fall_back_day_sees_the_second_copy_of_the_hour() -> None:
    at = utc(2024, 10, 27, 1, 10)  # 02:10 CET, in the repeated hour
    assert local(previous_run(Schedule("0 * * * *", "Europe/Berlin"), at), BERLIN) == "2024-10-27 02:00+0100"


def test_seconds_until_next_counts_to_the_next_run() -> None:
    assert seconds_until_next(Schedule("*/15 * * * *"), utc(2024, 5, 1, 10, 7, 30)) == 450.0


def test_seconds_until_next_spans_the_missing_hour() -> None:
    # 01:59 CET to 03:00 CEST is one minute of elapsed time.
    now = utc(2024, 3, 31, 0, 59)
    assert seconds_until_next(Schedule("30 2 * * *", "Europe/Berlin"), now) == 60.0


@pytest.mark.parametrize(
    "cron", ["not cron", "* * * * * *", "0 0 30 2 *", "H 2 * * *", "R 2 * * *", "61 * * * *"]
)
def test_invalid_or_nondeterministic_expression_is_refused(cron: str) -> None:
    with pytest.raises(ValueError, match="parse schedule"):
        Schedule(cron)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Schedule("0 * * * *", "Mars/Olympus_Mons")


def test_leap_day_rule_runs_every_four_years() -> None:
    assert next_run(Schedule("0 0 29 2 *"), utc(2024, 3, 1)) == utc(2028, 2, 29)
