"""PITR decisions (vault/pitr_plan.py), pure: the window, the restore plan, what to prune.

Times are plain epoch milliseconds.  The property tests model a change log as
sequence numbers 1..N with non-decreasing timestamps: the table as of T is
"every record up to the last one timestamped at or before T", and a plan is
right when replaying it from its base reaches exactly that record.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.pitr_format import SegmentRef, segments_prefix
from tablekeeper.vault.pitr_plan import (
    DAY_MS,
    ArchiveGap,
    Base,
    NoBase,
    RestorePlan,
    earliest_restorable,
    plan_prune,
    plan_restore,
)

TABLE = "t" * 32
WHAT = "restore table orders to 1.0"


def seg(first: int, last: int, first_ms: int, last_ms: int) -> SegmentRef:
    name = f"{segments_prefix(TABLE)}{first:020d}-{last:020d}.{first_ms:015d}-{last_ms:015d}"
    return SegmentRef(first, last, first_ms, last_ms, name)


def base(sequence: int, taken_ms: int) -> Base:
    return Base(f"b-{sequence}-{taken_ms}", sequence, taken_ms)


# --- earliest_restorable ---------------------------------------------------------------------


def test_earliest_is_the_window_start_while_the_window_is_younger_than_the_period() -> None:
    assert earliest_restorable(window_start_ms=1_000, period_days=35, now_ms=5 * DAY_MS) == 1_000


def test_earliest_is_the_period_ago_once_the_window_is_older_than_the_period() -> None:
    now = 40 * DAY_MS + 123
    assert earliest_restorable(window_start_ms=1_000, period_days=35, now_ms=now) == 5 * DAY_MS + 123


def test_earliest_moves_with_a_shorter_period() -> None:
    now = 40 * DAY_MS
    assert earliest_restorable(0, 1, now) == 39 * DAY_MS
    assert earliest_restorable(0, 35, now) == 5 * DAY_MS


def test_a_day_is_86_400_000_ms() -> None:
    assert DAY_MS == 86_400_000


# --- plan_restore ------------------------------------------------------------------------------


def test_plan_picks_the_newest_base_at_or_before_the_target() -> None:
    bases = [base(0, 100), base(10, 200), base(20, 300)]
    segments = [seg(1, 10, 110, 190), seg(11, 20, 210, 290), seg(21, 30, 310, 390)]
    assert plan_restore(bases, segments, 250, WHAT).base == base(10, 200)
    assert plan_restore(bases, segments, 300, WHAT).base == base(20, 300)  # "at" counts
    assert plan_restore(list(reversed(bases)), segments, 299, WHAT).base == base(10, 200)


def test_plan_prefers_the_higher_sequence_of_two_bases_taken_in_the_same_millisecond() -> None:
    bases = [base(12, 200), base(10, 200)]
    plan = plan_restore(bases, [seg(11, 12, 200, 200), seg(13, 14, 210, 220)], 215, WHAT)
    assert plan.base == base(12, 200)
    assert plan.segments == (seg(13, 14, 210, 220),)


def test_plan_chains_segments_contiguously_from_the_record_after_the_base() -> None:
    segments = [seg(21, 25, 310, 350), seg(1, 10, 110, 190), seg(11, 20, 210, 290), seg(26, 30, 360, 390)]
    plan = plan_restore([base(10, 200)], segments, 1_000, WHAT)
    assert plan == RestorePlan(base(10, 200), (seg(11, 20, 210, 290), seg(21, 25, 310, 350),
                                               seg(26, 30, 360, 390)), 1_000)


def test_plan_skips_segments_the_base_already_holds() -> None:
    segments = [seg(1, 5, 110, 150), seg(6, 10, 160, 190), seg(11, 15, 210, 250)]
    assert plan_restore([base(10, 200)], segments, 260, WHAT).segments == (seg(11, 15, 210, 250),)


def test_plan_starts_inside_a_segment_that_straddles_the_base() -> None:
    segments = [seg(1, 15, 110, 250), seg(16, 20, 260, 290)]
    plan = plan_restore([base(10, 200)], segments, 300, WHAT)
    assert plan.segments == (seg(1, 15, 110, 250), seg(16, 20, 260, 290))


def test_plan_stops_at_the_segment_holding_the_first_record_after_the_target() -> None:
    segments = [seg(1, 10, 110, 190), seg(11, 20, 210, 290), seg(21, 30, 310, 390)]
    assert plan_restore([base(0, 100)], segments, 250, WHAT).segments == (
        seg(1, 10, 110, 190), seg(11, 20, 210, 290))


def test_plan_takes_the_next_segment_when_the_target_is_a_segments_last_record() -> None:
    segments = [seg(1, 10, 110, 190), seg(11, 20, 210, 290)]
    # the next segment may start in the same millisecond: it is needed to know
    assert plan_restore([base(0, 100)], segments, 190, WHAT).segments == (
        seg(1, 10, 110, 190), seg(11, 20, 210, 290))


def test_plan_with_no_segments_after_the_base_is_the_base_alone() -> None:
    assert plan_restore([base(7, 100)], [seg(1, 7, 50, 90)], 500, WHAT).segments == ()
    assert plan_restore([base(0, 100)], [], 100, WHAT).segments == ()


def test_plan_of_a_reshipped_longer_segment_uses_the_longer_one() -> None:
    # shipped 1-5, crashed before noting it, shipped again from 1 with more records
    segments = [seg(1, 5, 110, 150), seg(1, 9, 110, 190), seg(10, 12, 200, 220)]
    assert plan_restore([base(0, 100)], segments, 1_000, WHAT).segments == (
        seg(1, 9, 110, 190), seg(10, 12, 200, 220))


def test_plan_of_partly_overlapping_segments_needs_no_record_twice_over() -> None:
    segments = [seg(1, 5, 110, 150), seg(3, 9, 130, 190), seg(6, 7, 160, 170), seg(10, 12, 200, 220)]
    assert plan_restore([base(0, 100)], segments, 1_000, WHAT).segments == (
        seg(1, 5, 110, 150), seg(3, 9, 130, 190), seg(10, 12, 200, 220))


def test_a_gap_between_segments_is_an_archive_gap_naming_the_missing_records() -> None:
    segments = [seg(1, 5, 110, 150), seg(9, 12, 200, 220)]
    with pytest.raises(ArchiveGap, match="missing log records 6 to 8"):
        plan_restore([base(0, 100)], segments, 1_000, WHAT)


def test_a_gap_right_after_the_base_is_an_archive_gap_even_before_the_next_segments_time() -> None:
    # records 11 to 14 may be older than the target: the plan never guesses
    with pytest.raises(ArchiveGap, match="missing log records 11 to 14"):
        plan_restore([base(10, 200)], [seg(15, 20, 900, 990)], 300, WHAT)


def test_a_gap_past_the_segment_holding_the_first_record_after_the_target_does_not_matter() -> None:
    segments = [seg(1, 5, 110, 150), seg(9, 12, 200, 220)]
    assert plan_restore([base(0, 100)], segments, 120, WHAT).segments == (seg(1, 5, 110, 150),)


def test_an_archive_gap_names_what_was_being_restored_and_is_a_vault_error() -> None:
    with pytest.raises(ArchiveGap) as raised:
        plan_restore([base(0, 100)], [seg(3, 4, 110, 120)], 500, WHAT)
    assert str(raised.value).startswith(WHAT + ": ")
    assert isinstance(raised.value, VaultError)


def test_no_base_at_or_before_the_target_is_no_base() -> None:
    with pytest.raises(NoBase, match="no base snapshot at or before the restore time"):
        plan_restore([base(10, 200), base(20, 300)], [seg(11, 20, 210, 290)], 199, WHAT)


def test_no_base_at_all_is_no_base() -> None:
    with pytest.raises(NoBase):
        plan_restore([], [seg(1, 2, 10, 20)], 1_000, WHAT)


def test_the_plan_carries_its_target() -> None:
    assert plan_restore([base(0, 100)], [], 123, WHAT).target_ms == 123


# --- plan_prune --------------------------------------------------------------------------------


def test_prune_keeps_the_newest_base_at_or_before_the_window_start_and_every_later_one() -> None:
    bases = [base(0, 100), base(10, 200), base(20, 300), base(30, 400)]
    prune = plan_prune(bases, [], earliest_ms=350)
    assert set(prune.bases) == {base(0, 100), base(10, 200)}


def test_prune_keeps_a_base_taken_exactly_at_the_window_start() -> None:
    bases = [base(0, 100), base(10, 200)]
    assert plan_prune(bases, [], earliest_ms=200).bases == (base(0, 100),)


def test_prune_removes_segments_entirely_at_or_below_the_kept_bases_sequence() -> None:
    bases = [base(0, 100), base(10, 200)]
    segments = [seg(1, 5, 110, 150), seg(6, 10, 160, 190), seg(8, 14, 180, 240), seg(11, 20, 210, 290)]
    prune = plan_prune(bases, segments, earliest_ms=250)
    assert set(prune.segments) == {seg(1, 5, 110, 150), seg(6, 10, 160, 190)}


def test_prune_removes_nothing_while_no_base_is_at_or_before_the_window_start() -> None:
    bases = [base(10, 200)]
    prune = plan_prune(bases, [seg(1, 10, 110, 190)], earliest_ms=199)
    assert prune.bases == () and prune.segments == ()


def test_prune_of_the_first_base_only_removes_nothing_but_older_segments() -> None:
    prune = plan_prune([base(10, 200)], [seg(1, 10, 110, 190), seg(11, 12, 210, 220)], earliest_ms=5_000)
    assert prune.bases == ()
    assert prune.segments == (seg(1, 10, 110, 190),)


# --- properties: a model log, its bases and segments ------------------------------------------


class Archive:
    """A log 1..N with timestamps, bases and segments as the archiver could have left them."""

    def __init__(self, times: list[int], base_points: list[tuple[int, int]], cuts: list[int],
                 extras: list[tuple[int, int]]) -> None:
        self.times = times  # times[i] is the timestamp of record i + 1
        self.bases = [base(seq, taken) for seq, taken in base_points]
        start = min(seq for seq, _ in base_points)
        n = len(times)
        bounds = sorted({c for c in cuts if start < c <= n} | {n})
        self.segments: list[SegmentRef] = []
        first = start + 1
        for last in bounds:
            if first <= last:
                self.segments.append(self.segment(first, last))
            first = last + 1
        for a, b in extras:  # re-shipped or overlapping ranges
            lo, hi = sorted((a, b))
            if start < lo and hi <= n:
                self.segments.append(self.segment(lo, hi))

    def segment(self, first: int, last: int) -> SegmentRef:
        span = self.times[first - 1:last]
        return seg(first, last, min(span), max(span))

    @property
    def start_ms(self) -> int:
        return min(b.taken_ms for b in self.bases)

    @property
    def latest_ms(self) -> int:
        return max([b.taken_ms for b in self.bases] + [s.last_ms for s in self.segments])

    def truth(self, target_ms: int) -> int:
        """The sequence number of the last record at or before the target (0: none)."""
        return max((i + 1 for i, t in enumerate(self.times) if t <= target_ms), default=0)

    def replayed(self, plan: RestorePlan) -> int:
        """Where replaying ``plan`` ends, as ``PitrArchive.replay`` does; checks contiguity."""
        reached = plan.base.sequence
        for ref in plan.segments:
            for sequence in range(ref.first, ref.last + 1):
                if sequence <= reached:
                    continue
                assert sequence == reached + 1, f"replay skipped {reached + 1} to {sequence - 1}"
                if self.times[sequence - 1] > plan.target_ms:
                    return reached
                reached = sequence
        return reached


@st.composite
def archives(draw: st.DrawFn) -> tuple[Archive, int]:
    """An archive and an earliest restorable time inside its window."""
    n = draw(st.integers(0, 30))
    steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    times, now = [], 100
    for step in steps:
        now += step
        times.append(now)
    # a base as of sequence S is taken at or after record S's time (later records may share it,
    # or even be older, when they were committing as the base was pinned); bases in order
    sequences = sorted(set(draw(st.lists(st.integers(0, n), min_size=1, max_size=6))))
    base_points, taken = [], 90
    for s in sequences:
        taken = max(taken, times[s - 1] if s else 90) + draw(st.integers(0, 4))
        base_points.append((s, taken))
    cuts = draw(st.lists(st.integers(1, max(n, 1)), max_size=8))
    extras = draw(st.lists(st.tuples(st.integers(1, max(n, 1)), st.integers(1, max(n, 1))), max_size=4))
    archive = Archive(times, base_points, cuts, extras)
    earliest = draw(st.integers(archive.start_ms, archive.latest_ms))
    return archive, earliest


def _check_every_time(archive: Archive, bases: Sequence[Base], segments: Sequence[SegmentRef],
                      earliest: int) -> None:
    for target in range(earliest, archive.latest_ms + 1):
        plan = plan_restore(bases, segments, target, WHAT)
        assert archive.replayed(plan) == archive.truth(target), target


@settings(max_examples=150, deadline=None)
@given(archives())
def test_every_time_in_the_window_plans_to_exactly_the_records_up_to_it(drawn: tuple[Archive, int]) -> None:
    archive, earliest = drawn
    _check_every_time(archive, archive.bases, archive.segments, earliest)


@settings(max_examples=150, deadline=None)
@given(archives())
def test_pruning_never_removes_what_a_restore_inside_the_window_needs(drawn: tuple[Archive, int]) -> None:
    archive, earliest = drawn
    prune = plan_prune(archive.bases, archive.segments, earliest)
    bases = [b for b in archive.bases if b not in prune.bases]
    segments = [s for s in archive.segments if s not in prune.segments]
    _check_every_time(archive, bases, segments, earliest)


@settings(max_examples=100, deadline=None)
@given(archives())
def test_pruning_keeps_one_anchor_base_and_removes_only_segments_it_holds(
    drawn: tuple[Archive, int],
) -> None:
    archive, earliest = drawn
    prune = plan_prune(archive.bases, archive.segments, earliest)
    anchor = max((b for b in archive.bases if b.taken_ms <= earliest), key=lambda b: (b.taken_ms, b.sequence))
    assert anchor not in prune.bases
    assert all(b.taken_ms < anchor.taken_ms for b in prune.bases)
    assert all(b in prune.bases for b in archive.bases if b.taken_ms < anchor.taken_ms)
    assert set(prune.segments) == {s for s in archive.segments if s.last <= anchor.sequence}
