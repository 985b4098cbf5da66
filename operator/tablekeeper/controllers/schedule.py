"""Cron schedules in a time zone, and which scheduled run a backup plan starts now.

Pure: every function takes the time it needs as an argument (aware datetimes,
returned in UTC); nothing here reads the clock.

Daylight-saving time follows Vixie cron (cron(8), "Daylight Saving Time"):

* A job at a *fixed* time (no ``*`` in its minute or hour field) whose wall-clock
  time does not exist on a spring-forward day runs once, at the first instant
  after the gap (02:30 in Europe/Berlin on the last Sunday of March runs at
  03:00 CEST). On a fall-back day it runs once, at the first of the two
  02:30s.
* A job with ``*`` in its minute or hour field (``0 * * * *``, ``*/15 * * * *``,
  ``@hourly``) follows elapsed time: it fires at every instant whose local wall
  clock matches, so it skips the wall-clock times that do not exist and fires in
  both copies of a repeated hour.

croniter parses the expression and walks *wall-clock* (naive) time; the mapping
from wall clock to instants is done here, because croniter on aware datetimes
fires a fixed 02:30 job twice on fall-back day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

# The largest jump of a zone's UTC offset considered when walking wall-clock
# time (DST moves by one hour; a few zones have moved by two).
MAX_SHIFT = timedelta(hours=3)
# How many missed runs a decision lists; older ones are only flagged.
MAX_REPORTED_MISSED = 10

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# How far a search walks before giving up; Feb 29 rules skip up to 8 years (2096 to 2104).
_MAX_WALK = timedelta(days=366 * 10)
# Any reference time works for the "does it ever fire" check; croniter looks ahead for years.
_PROBE = datetime(2000, 1, 1)


@dataclass(frozen=True)
class Schedule:
    """A five-field cron expression (or an ``@daily``-style alias) read in an IANA time zone."""

    cron: str
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        fields = self.fields
        if len(fields) != 5:
            raise ValueError(f"parse schedule {self.cron!r}: expected 5 fields, got {len(fields)}")
        # H (hashed) and R (random) make croniter pick minutes at random: not deterministic.
        if any(item[:1].upper() in ("H", "R") for field in fields for item in field.split(",")):
            raise ValueError(
                f"parse schedule {self.cron!r}: hashed (H) and random (R) fields are not supported"
            )
        try:
            croniter(self.expression, _PROBE).get_next(datetime)
        except CroniterError as error:
            raise ValueError(f"parse schedule {self.cron!r}: {error}") from None
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"parse schedule {self.cron!r}: unknown time zone {self.time_zone!r}") from None

    @property
    def expression(self) -> str:
        """The five-field form, aliases expanded."""
        text = " ".join(self.cron.split())
        return _ALIASES.get(text.lower(), text)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.expression.split())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def follows_elapsed_time(self) -> bool:
        """True when the minute or hour field is a wildcard (Vixie cron's MIN_STAR/HR_STAR)."""
        minute, hour = self.fields[:2]
        return minute.startswith("*") or hour.startswith("*")


class RunReason(StrEnum):
    """Why a decision starts a run or not; also usable as a condition or event reason."""

    DUE = "Due"
    NOT_DUE = "NotDue"
    MISSED = "Missed"
    SUSPENDED = "Suspended"
    PREVIOUS_RUN_IN_PROGRESS = "PreviousRunInProgress"


@dataclass(frozen=True)
class RunDecision:
    """What to do for one rule at one moment.

    ``start`` is the *scheduled* instant of the run to start now (name the child
    after it, so a retry after a crash finds the same child). ``last_run`` is
    what the caller records and passes back next time: the newest scheduled
    instant that has been started or given up as missed, so nothing is started
    or reported twice.
    """

    start: datetime | None
    reason: RunReason
    last_run: datetime | None
    next_run: datetime
    missed: tuple[datetime, ...] = ()  # newest MAX_REPORTED_MISSED missed runs, oldest first
    missed_truncated: bool = False  # older missed runs exist beyond those listed
    run_now: str | None = None  # a run-now token not handled before: start an on-demand run for it


def next_run(schedule: Schedule, after: datetime) -> datetime:
    """The first instant strictly after ``after`` at which ``schedule`` fires (UTC)."""
    return _search(schedule, _utc(after, "after"), forward=True)


def previous_run(schedule: Schedule, at: datetime) -> datetime:
    """The last instant at or before ``at`` at which ``schedule`` fires (UTC)."""
    return _search(schedule, _utc(at, "at"), forward=False)


def seconds_until_next(schedule: Schedule, now: datetime) -> float:
    """Seconds from ``now`` to the next run: how long a timer may sleep."""
    now = _utc(now, "now")
    return (next_run(schedule, now) - now).total_seconds()


def due_runs(
    schedule: Schedule,
    last_run: datetime | None,
    created: datetime,
    now: datetime,
    start_window: timedelta,
    *,
    suspended: bool = False,
    in_progress: bool = False,
    run_now: str | None = None,
    handled_run_now: str | None = None,
) -> RunDecision:
    """Decide which scheduled run, if any, to start at ``now``.

    Only instants after ``created`` and after ``last_run`` count, so a run never
    starts twice. A run may start while ``now`` is in ``[instant, instant +
    start_window)``; only the newest such run starts (no burst of catch-up
    backups after downtime) and older ones are reported as missed. While a run
    of the rule is ``in_progress`` the due run waits, within its start window,
    rather than overlapping. ``suspended`` stops scheduled runs (runs that fall
    in a suspension count as missed once it ends, as for a CronJob). A
    ``run_now`` token differing from ``handled_run_now`` is an explicit request
    and is honoured even while suspended or in progress.
    """
    now, created = _utc(now, "now"), _utc(created, "created")
    last_run = None if last_run is None else _utc(last_run, "last_run")
    if start_window <= timedelta(0):
        raise ValueError(f"decide schedule: start window must be positive, got {start_window}")
    token = run_now if run_now and run_now != handled_run_now else None
    upcoming = next_run(schedule, now)
    if suspended:
        return RunDecision(None, RunReason.SUSPENDED, last_run, upcoming, run_now=token)
    anchor = created if last_run is None else max(created, last_run)
    runs, more = _runs_back(schedule, anchor, now, MAX_REPORTED_MISSED + 1)
    pending = runs[0] if runs and now < runs[0] + start_window else None
    missed = runs[1:] if pending else runs
    truncated = more or len(missed) > MAX_REPORTED_MISSED
    missed = missed[:MAX_REPORTED_MISSED]
    recorded = missed[0] if missed else last_run
    if pending is not None and not in_progress:
        reason, start, recorded = RunReason.DUE, pending, pending
    elif pending is not None:
        reason, start = RunReason.PREVIOUS_RUN_IN_PROGRESS, None
    else:
        reason, start = (RunReason.MISSED if missed else RunReason.NOT_DUE), None
    return RunDecision(start, reason, recorded, upcoming, tuple(reversed(missed)), truncated, token)


def _runs_back(
    schedule: Schedule, after: datetime, upto: datetime, limit: int
) -> tuple[list[datetime], bool]:
    """Up to ``limit`` runs in ``(after, upto]``, newest first, and whether older ones were left out."""
    runs: list[datetime] = []
    point = upto
    while len(runs) < limit:
        run = previous_run(schedule, point)
        if run <= after:
            return runs, False
        runs.append(run)
        point = run - timedelta(microseconds=1)
    return runs, next_run(schedule, after) < runs[-1]


def _search(schedule: Schedule, point: datetime, *, forward: bool) -> datetime:
    """The nearest firing instant after ``point`` (forward) or at/before it (backward).

    Walks wall-clock times with croniter and maps each to its instants. The
    smallest instant of successive wall-clock times never decreases, nor does
    the largest, so the walk stops once a wall-clock time can no longer beat
    the best instant found.
    """
    zone = schedule.zone
    # Near a change of UTC offset, a wall-clock time behind (ahead of) ``point``
    # can fire after (before) it: start the walk that much further away.
    near_change = _offset(point - MAX_SHIFT, zone) != _offset(point + MAX_SHIFT, zone)
    margin = MAX_SHIFT if near_change else timedelta(0)
    wall = _wall(point, zone)
    # croniter steps strictly past its start; backward, one minute ahead keeps ``wall`` itself.
    start = wall - margin if forward else wall + margin + timedelta(minutes=1)
    walls = croniter(schedule.expression, start)
    best: datetime | None = None
    while True:
        step = walls.get_next(datetime) if forward else walls.get_prev(datetime)
        if abs(step - wall) > _MAX_WALK:  # e.g. a wildcard rule that matches only inside DST gaps
            raise ValueError(f"schedule {schedule.cron!r}: no run within {_MAX_WALK.days} days of {point}")
        instants = _instants(schedule, step, zone)
        if not instants:
            continue
        if forward:
            best = min([i for i in instants if i > point] + ([best] if best else []), default=None)
            if best is not None and min(instants) >= best:
                return best
        else:
            best = max([i for i in instants if i <= point] + ([best] if best else []), default=None)
            if best is not None and max(instants) <= best:
                return best


def _instants(schedule: Schedule, wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants at which ``schedule`` fires for the wall-clock time ``wall``."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return (first,)
    if _wall(first, zone) != wall:  # in a gap: this wall-clock time never happens
        return (
            () if schedule.follows_elapsed_time else (_gap_end(min(first, second), max(first, second), zone),)
        )
    return (first, second) if schedule.follows_elapsed_time else (first,)


def _gap_end(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (whole second) in ``(before, after]`` with ``after``'s UTC offset."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"decide schedule: {name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)
