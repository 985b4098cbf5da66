"""From how a pass ended to the status it writes: what every controller's reporting shares.

Each controller names its outcomes (a reason word each) and maps every one
to a ``Verdict``: the values of Ready, Progressing and Degraded.  Applying a
verdict (``apply_verdict``, pure) sets the three conditions: a condition that
holds carries the outcome's reason and message; a Progressing or Degraded
that does not hold has nothing to say (reason ``AsExpected``, no message), so
going from one quiet outcome to another is no transition and no event.
Ready always carries the outcome, or keeps its old value when the verdict
leaves it alone (a refusal leaves a working object working).

``Reporter`` is the impure rest: it merges the fields into the handler's
status patch (merged, never replaced: other writers' fields stay), posts an
event per transition, and counts the pass in the metrics.  A timer's pass
reports ``only_if_unchanged_since`` the object it started from: its fields
then go out in kopf's JSON patch, which tests the resourceVersion, and only
if no handler wrote a verdict meanwhile (``moved_on``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import kopf
import pydantic

from tablekeeper.controllers import conditions
from tablekeeper.controllers.conditions import Condition, ConditionStatus, Transition
from tablekeeper.controllers.metrics import Metrics
from tablekeeper.resources.common import Status

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
Clock = Callable[[], datetime]  # every controller reads time through one, so tests can drive it
QUIET: Final = "AsExpected"  # the reason of a Progressing or Degraded condition that does not hold


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Verdict:
    """The conditions an outcome sets; ``ready`` None leaves Ready as it was (False when never set)."""

    ready: ConditionStatus | None
    progressing: ConditionStatus
    degraded: ConditionStatus


def apply_verdict(
    old: Iterable[Condition], reason: str, message: str, verdict: Verdict, generation: int | None,
    now: datetime,
) -> tuple[Condition, ...]:  # fmt: skip
    """``old`` with Ready, Progressing and Degraded set as ``verdict`` says, for the outcome ``reason``."""
    current = tuple(old)
    updates = [(conditions.PROGRESSING, verdict.progressing), (conditions.DEGRADED, verdict.degraded)]
    if verdict.ready is not None or conditions.find(current, conditions.READY) is None:
        updates.insert(0, (conditions.READY, verdict.ready or FALSE))
    for kind, value in updates:
        telling = value is TRUE or kind == conditions.READY
        said, shown = (reason, message) if telling else (QUIET, "")
        condition = Condition(kind, value, said, shown, observed_generation=generation)
        current = conditions.set_condition(current, condition, now)
    return current


def holds(status: Mapping[str, Any], kind: str) -> bool:
    """Whether ``status`` has the condition ``kind`` and it is True."""
    found = conditions.find(conditions.conditions_from(status.get("conditions")), kind)
    return found is not None and found.status is TRUE


def condition_reason(status: Mapping[str, Any], kind: str) -> str | None:
    """The reason of condition ``kind`` in ``status``, None when it is not set."""
    found = conditions.find(conditions.conditions_from(status.get("conditions")), kind)
    return None if found is None else found.reason


class Reporter:
    """One object's status in one handler call: the patch, the events, the metrics."""

    def __init__(
        self, kind: str, body: kopf.Body, patch: kopf.Patch, model: type[Status], metrics: Metrics | None,
        readiness: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        """``readiness``: condition types besides Ready whose turning False is a Warning (e.g. PITRReady)."""
        self.kind, self.body, self.patch, self.model, self.metrics = kind, body, patch, model, metrics
        self.readiness = readiness
        self.key = f"{body.metadata.namespace}/{body.metadata.name}"
        self.status: dict[str, Any] = dict(body.status)  # as reported so far in this call
        self._start: Mapping[str, Any] | None = None
        self._pending: dict[str, Any] | None = None  # a timer's fields, once it wrote any

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return conditions.conditions_from(self.status.get("conditions"))

    def only_if_unchanged_since(self, start: Mapping[str, Any]) -> None:
        """Write this call's fields only if the object has not ``moved_on`` from ``start`` (``seen``).

        A timer checks that before it reports, but a handler may still write its verdict between
        that check and kopf applying the timer's patch. So the fields go into one patch function:
        kopf sends what it changes as a JSON patch that tests the resourceVersion, and calls it
        again on a fresher object when that test fails. The function looks at the object kopf
        knows then (the live ``body``) and writes nothing if it moved on.
        """
        self._start = start

    def write(self, outcome: str, fields: Mapping[str, Any], changed: Iterable[Transition] = ()) -> None:
        """Merge ``fields`` into the status, post an event per transition, count the pass."""
        self.model.model_validate(fields)  # what goes on the wire is what the CRD allows
        if self._start is None:
            self.patch.status.update(fields)
        else:
            if self._pending is None:
                self._pending = {}
                self.patch.fns.append(self._write_if_unchanged)
            merge_status(self._pending, copy.deepcopy(dict(fields)))
        self.status.update(fields)  # a second write in this call posts only what changed since
        for transition in changed:
            text = f"{transition.type} is {transition.new_status}"
            text += f": {transition.message}" if transition.message else ""
            kopf.event(self.body, type=self.event_type(transition), reason=transition.reason, message=text)
        if self.metrics is not None:
            self.metrics.reconciled(self.kind, self.key, outcome, fields.get("phase"))

    def _write_if_unchanged(self, target: dict[str, Any]) -> None:
        # The live body, not ``target``: a patch function kept from an earlier pass may have
        # changed ``target`` already, and that must not read as a handler's verdict.
        if self._start is not None and self._pending and not moved_on(self._start, self.body):
            merge_status(target.setdefault("status", {}), copy.deepcopy(self._pending))

    def event_type(self, transition: Transition) -> str:
        lost = transition.new_status is FALSE and transition.old_status is not None
        return "Warning" if transition.type in self.readiness and lost else transition.event_type

    def forget(self) -> None:
        """The object is gone: drop it from the metrics' phase gauge."""
        if self.metrics is not None:
            self.metrics.forget(self.kind, self.key)


def problems(error: Exception) -> str:
    """A spec's validation errors as one line ("field.path: what is wrong; ..."), else the error."""
    if isinstance(error, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return str(error)


def merge_status(status: dict[str, Any], fields: Mapping[str, Any]) -> None:
    """Merge ``fields`` into ``status`` as a JSON merge patch would (RFC 7386): None removes a field,
    a mapping merges into the mapping there, anything else replaces."""
    for key, value in fields.items():
        if value is None:
            status.pop(key, None)
        elif isinstance(value, Mapping):
            if not isinstance(status.get(key), dict):
                status[key] = {}
            merge_status(status[key], value)
        else:
            status[key] = value


# --- timers ---------------------------------------------------------------------------------------


def seen(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object as a timer's pass starts from it.

    kopf hands timers a live body, updated while they run: keep a copy of what it was.
    """
    return copy.deepcopy(
        {"metadata": dict(body.get("metadata") or {}), "status": dict(body.get("status") or {})}
    )


def moved_on(body: Mapping[str, Any], now: Mapping[str, Any] | None) -> bool:
    """Whether the object changed since ``body`` (``seen``) in what its status answers to: gone or
    being deleted, a new spec (generation), or a status a handler wrote since (its conditions).

    A timer's pass that took a while (an engine or vault call) stands down then: writing would put
    its older view over a handler's newer verdict.
    """
    if now is None or (now.get("metadata") or {}).get("deletionTimestamp"):
        return True
    then_meta, now_meta = body.get("metadata") or {}, now.get("metadata") or {}
    if then_meta.get("generation") != now_meta.get("generation"):
        return True
    return bool((body.get("status") or {}).get("conditions") != (now.get("status") or {}).get("conditions"))


def outlived(body: Mapping[str, Any], now: Mapping[str, Any] | None) -> bool:
    """Whether a deletion handler's ``body`` is stale: its object is gone (``now`` is what the API
    server has under that name), or the name now belongs to another object (another uid).

    kopf runs a deletion at least once, and a stale body (a watch replay, a restart) can bring one
    back after the object went: acting on it would undo what a new object of that name set up.
    """
    if now is None:
        return True
    return (now.get("metadata") or {}).get("uid") != (body.get("metadata") or {}).get("uid")
