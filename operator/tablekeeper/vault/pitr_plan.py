"""Point-in-time recovery decisions, pure: the window, the restore plan, what to prune.

Times are epoch milliseconds and arguments; nothing here reads a clock or a
vault.  A restore to time T is the table after every change-log record up
to the first one timestamped after T: the newest base taken at or before T,
then the archived records after the base's sequence number, in order.  The
log's sequence numbers are contiguous, so the plan can prove it has every
record it needs and refuses (``ArchiveGap``) before anything is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tablekeeper.vault.errors import VaultError
from tablekeeper.vault.pitr_format import SegmentRef

DAY_MS = 24 * 3600 * 1000


class ArchiveGap(VaultError):
    """The archive lacks records a restore needs: "restore ...: records A to B are missing"."""


class NoBase(VaultError):
    """No base snapshot at or before the restore time."""


@dataclass(frozen=True, slots=True)
class Base:
    """A base snapshot: the table as of ``sequence``, taken at ``taken_ms``."""

    backup_id: str
    sequence: int
    taken_ms: int


@dataclass(frozen=True, slots=True)
class RestorePlan:
    base: Base
    segments: tuple[SegmentRef, ...]  # in sequence order; replay those after base.sequence
    target_ms: int


def earliest_restorable(window_start_ms: int, period_days: int, now_ms: int) -> int:
    """The window's start: when PITR was (re)enabled, or the recovery period ago if later."""
    return max(window_start_ms, now_ms - period_days * DAY_MS)


def plan_restore(
    bases: Sequence[Base], segments: Sequence[SegmentRef], target_ms: int, what: str
) -> RestorePlan:
    """The base and segments that restore the table to ``target_ms`` (see the module docstring)."""
    usable = [base for base in bases if base.taken_ms <= target_ms]
    if not usable:
        raise NoBase(f"{what}: no base snapshot at or before the restore time")
    base = max(usable, key=lambda b: (b.taken_ms, b.sequence))
    chain: list[SegmentRef] = []
    needed = base.sequence + 1
    ordered = sorted(segments)
    while True:
        covering = [s for s in ordered if s.first <= needed <= s.last]
        if not covering:
            later = [s for s in ordered if s.first > needed]
            if later:  # the missing records may be older than the target: never guess
                raise ArchiveGap(
                    f"{what}: the archive is missing log records {needed} to "
                    f"{min(s.first for s in later) - 1}"
                )
            break  # the end of the archive (the window's latest time covers the target)
        segment = max(covering, key=lambda s: s.last)
        chain.append(segment)
        if segment.last_ms > target_ms:
            break  # this segment holds the first record after the target
        needed = segment.last + 1
    return RestorePlan(base, tuple(chain), target_ms)


@dataclass(frozen=True, slots=True)
class Prune:
    bases: tuple[Base, ...]
    segments: tuple[SegmentRef, ...]


def plan_prune(bases: Sequence[Base], segments: Sequence[SegmentRef], earliest_ms: int) -> Prune:
    """What no restore inside the window can need any more.

    Keeps the newest base at or before the window's start (restores to the
    earliest time need it) and every base after; a segment goes once all its
    records are older than that base's sequence.
    """
    anchor_candidates = [base for base in bases if base.taken_ms <= earliest_ms]
    if not anchor_candidates:
        return Prune((), ())
    anchor = max(anchor_candidates, key=lambda b: (b.taken_ms, b.sequence))
    old_bases = tuple(base for base in bases if base.taken_ms < anchor.taken_ms)
    old_segments = tuple(segment for segment in segments if segment.last <= anchor.sequence)
    return Prune(old_bases, old_segments)
