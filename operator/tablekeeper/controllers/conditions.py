"""Status conditions as Kubernetes conventions have them, and the phase shown to people.

Every kind carries ``observedGeneration``, conditions of type Ready,
Progressing and Degraded (each with reason, message, lastTransitionTime and
observedGeneration) and a one-word ``phase`` for printer columns. These helpers
are pure: the caller passes ``now`` and patches what they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Phase(StrEnum):
    PENDING = "Pending"  # nothing reported yet
    PROGRESSING = "Progressing"
    READY = "Ready"
    NOT_READY = "NotReady"
    DEGRADED = "Degraded"


@dataclass(frozen=True)
class Condition:
    """One condition; ``last_transition_time`` is filled in by :func:`set_condition`."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: datetime | None = None

    def __post_init__(self) -> None:
        # Accept the plain strings "True"/"False"/"Unknown" as callers write them.
        object.__setattr__(self, "status", ConditionStatus(self.status))

    def to_dict(self) -> dict[str, Any]:
        """The wire form (camelCase keys, RFC 3339 UTC time)."""
        wire: dict[str, Any] = {
            "type": self.type,
            "status": str(self.status),
            "reason": self.reason,
            "message": self.message,
        }
        if self.last_transition_time is not None:
            wire["lastTransitionTime"] = format_time(self.last_transition_time)
        if self.observed_generation is not None:
            wire["observedGeneration"] = self.observed_generation
        return wire

    @classmethod
    def from_dict(cls, wire: Mapping[str, Any]) -> Condition:
        """Read the wire form; a missing message or time is tolerated, as other writers may omit them."""
        try:
            status = ConditionStatus(wire["status"])
            kind, reason = str(wire["type"]), str(wire.get("reason", ""))
        except (KeyError, ValueError) as error:
            raise ValueError(f"read condition {dict(wire)!r}: {error}") from None
        time = wire.get("lastTransitionTime")
        generation = wire.get("observedGeneration")
        return cls(
            type=kind,
            status=status,
            reason=reason,
            message=str(wire.get("message", "")),
            observed_generation=int(generation) if generation is not None else None,
            last_transition_time=parse_time(time) if time else None,
        )


@dataclass(frozen=True)
class Transition:
    """A condition changed status or reason: worth a Kubernetes event."""

    type: str
    old_status: ConditionStatus | None  # None: the condition is new
    new_status: ConditionStatus
    reason: str
    message: str

    @property
    def event_type(self) -> str:
        """'Warning' when things got worse (Degraded set, Ready lost), else 'Normal'."""
        worse = (self.type == DEGRADED and self.new_status is ConditionStatus.TRUE) or (
            self.type == READY and self.new_status is ConditionStatus.FALSE and self.old_status is not None
        )
        return "Warning" if worse else "Normal"


def set_condition(conditions: Iterable[Condition], new: Condition, now: datetime) -> tuple[Condition, ...]:
    """``conditions`` with ``new`` in place of the one of its type (appended when absent).

    lastTransitionTime moves to ``now`` only when the status changes; a new
    reason, message or generation alone keeps it.
    """
    if now.tzinfo is None:
        raise ValueError(f"set condition {new.type}: now must be timezone-aware, got {now.isoformat()}")
    current = tuple(conditions)
    previous = find(current, new.type)
    unchanged = previous is not None and previous.status == new.status
    # Whole seconds, as the wire keeps them, so a value read back compares equal.
    since = previous.last_transition_time if unchanged and previous.last_transition_time else now
    placed = replace(new, last_transition_time=since.astimezone(UTC).replace(microsecond=0))
    if previous is None:
        return (*current, placed)
    return tuple(placed if c.type == new.type else c for c in current)


def transitions(old: Iterable[Condition], new: Iterable[Condition]) -> tuple[Transition, ...]:
    """The conditions of ``new`` whose status or reason differs from ``old``, in ``new``'s order."""
    before = {c.type: c for c in old}
    changes = []
    for condition in new:
        prior = before.get(condition.type)
        if prior is None or prior.status != condition.status or prior.reason != condition.reason:
            changes.append(
                Transition(
                    type=condition.type,
                    old_status=prior.status if prior else None,
                    new_status=condition.status,
                    reason=condition.reason,
                    message=condition.message,
                )
            )
    return tuple(changes)


def find(conditions: Iterable[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


def phase_of(conditions: Iterable[Condition]) -> Phase:
    """The phase for people: Degraded, then Progressing, then Ready or NotReady, else Pending."""
    current = tuple(conditions)

    def is_true(kind: str) -> bool:
        found = find(current, kind)
        return found is not None and found.status is ConditionStatus.TRUE

    if is_true(DEGRADED):
        return Phase.DEGRADED
    if is_true(PROGRESSING):
        return Phase.PROGRESSING
    ready = find(current, READY)
    if ready is None or ready.status is ConditionStatus.UNKNOWN:
        return Phase.PENDING
    return Phase.READY if ready.status is ConditionStatus.TRUE else Phase.NOT_READY


def status_fields(
    observed_generation: int | None, conditions: Iterable[Condition], phase: str | None = None
) -> dict[str, Any]:
    """The common part of every kind's status, ready to merge into a status patch.

    ``phase`` is the kind's own (each CRD allows only its kind's phases, e.g. a
    Table's Pending/Creating/Active/Updating/Deleting/Failed); without it, the
    generic ``phase_of``, which no CRD's enum allows as it stands.
    """
    current = tuple(conditions)
    return {
        "observedGeneration": observed_generation,
        "conditions": [c.to_dict() for c in current],
        "phase": phase if phase is not None else str(phase_of(current)),
    }


def conditions_from(wire: Iterable[Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    """Conditions read from ``status.conditions`` (absent is empty)."""
    return tuple(Condition.from_dict(item) for item in wire or ())


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, second resolution, as Kubernetes writes times."""
    if value.tzinfo is None:
        raise ValueError(f"format time: must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Read an RFC 3339 time (``Z`` or an offset) as aware UTC."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"parse time {text!r}: not RFC 3339") from None
    if parsed.tzinfo is None:
        raise ValueError(f"parse time {text!r}: no time zone")
    return parsed.astimezone(UTC)
