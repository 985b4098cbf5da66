"""Status conditions: transition times, phases, transitions for events, and the wire form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tablekeeper.controllers.conditions import (
    DEGRADED,
    PROGRESSING,
    READY,
    Condition,
    ConditionStatus,
    Phase,
    conditions_from,
    phase_of,
    set_condition,
    status_fields,
    transitions,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def ready(status: ConditionStatus, reason: str = "Reconciled", generation: int = 1) -> Condition:
    return Condition(READY, status, reason, "", observed_generation=generation)


def test_new_condition_gets_now_as_its_transition_time() -> None:
    (placed,) = set_condition((), ready(TRUE), T0)
    assert placed.last_transition_time == T0


def test_same_status_keeps_the_transition_time() -> None:
    conditions = set_condition((), ready(TRUE), T0)
    (placed,) = set_condition(conditions, ready(TRUE, "StillFine", generation=2), T1)
    assert (placed.last_transition_time, placed.reason, placed.observed_generation) == (T0, "StillFine", 2)


def test_changed_status_moves_the_transition_time() -> None:
    conditions = set_condition((), ready(TRUE), T0)
    (placed,) = set_condition(conditions, ready(FALSE, "EngineDown"), T1)
    assert placed.last_transition_time == T1


def test_transition_time_is_kept_to_whole_seconds_as_on_the_wire() -> None:
    (placed,) = set_condition((), ready(TRUE), T0 + timedelta(microseconds=750))
    assert placed.last_transition_time == T0


def test_other_conditions_keep_their_place() -> None:
    conditions = set_condition((), ready(TRUE), T0)
    conditions = set_condition(conditions, Condition(DEGRADED, FALSE, "AsExpected"), T0)
    conditions = set_condition(conditions, ready(FALSE, "EngineDown"), T1)
    assert [c.type for c in conditions] == [READY, DEGRADED]


def test_plain_status_strings_are_accepted() -> None:
    assert Condition(READY, "True", "Reconciled").status is TRUE  # type: ignore[arg-type]


def test_unknown_status_string_is_refused() -> None:
    with pytest.raises(ValueError):
        Condition(READY, "Yes", "Reconciled")  # type: ignore[arg-type]


def test_transitions_report_a_status_change() -> None:
    before = set_condition((), ready(TRUE), T0)
    after = set_condition(before, ready(FALSE, "EngineDown"), T1)
    (change,) = transitions(before, after)
    assert (change.type, change.old_status, change.new_status, change.reason) == (
        READY,
        TRUE,
        FALSE,
        "EngineDown",
    )


def test_transitions_report_a_new_condition() -> None:
    (change,) = transitions((), set_condition((), ready(TRUE), T0))
    assert (change.old_status, change.new_status, change.event_type) == (None, TRUE, "Normal")


def test_transitions_report_a_new_reason_with_the_same_status() -> None:
    before = set_condition((), Condition(DEGRADED, TRUE, "BackupFailed"), T0)
    after = set_condition(before, Condition(DEGRADED, TRUE, "VaultUnreachable"), T1)
    assert [c.reason for c in transitions(before, after)] == ["VaultUnreachable"]


def test_no_transition_when_only_the_message_changes() -> None:
    before = set_condition((), Condition(READY, TRUE, "Reconciled", "3 tables"), T0)
    after = set_condition(before, Condition(READY, TRUE, "Reconciled", "4 tables"), T1)
    assert transitions(before, after) == ()


def test_losing_ready_is_a_warning_event() -> None:
    before = set_condition((), ready(TRUE), T0)
    (change,) = transitions(before, set_condition(before, ready(FALSE, "EngineDown"), T1))
    assert change.event_type == "Warning"


def test_becoming_degraded_is_a_warning_event() -> None:
    (change,) = transitions((), set_condition((), Condition(DEGRADED, TRUE, "BackupFailed"), T0))
    assert change.event_type == "Warning"


@pytest.mark.parametrize(
    ("conditions", "phase"),
    [
        ((), Phase.PENDING),
        ((Condition(READY, UNKNOWN, "Starting"),), Phase.PENDING),
        ((Condition(READY, TRUE, "Reconciled"),), Phase.READY),
        ((Condition(READY, FALSE, "EngineDown"),), Phase.NOT_READY),
        ((Condition(READY, TRUE, "R"), Condition(PROGRESSING, TRUE, "Resizing")), Phase.PROGRESSING),
        (
            (Condition(READY, TRUE, "R"), Condition(PROGRESSING, TRUE, "P"), Condition(DEGRADED, TRUE, "D")),
            Phase.DEGRADED,
        ),
    ],
)
def test_phase_follows_degraded_then_progressing_then_ready(
    conditions: tuple[Condition, ...], phase: Phase
) -> None:
    assert phase_of(conditions) is phase


def test_condition_round_trips_through_its_wire_form() -> None:
    (placed,) = set_condition((), Condition(READY, TRUE, "Reconciled", "ok", observed_generation=3), T0)
    wire = placed.to_dict()
    assert wire == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "ok",
        "lastTransitionTime": "2024-05-01T10:00:00Z",
        "observedGeneration": 3,
    }
    assert Condition.from_dict(wire) == placed


def test_wire_form_with_an_offset_time_is_read_as_utc() -> None:
    wire = {
        "type": "Ready",
        "status": "False",
        "reason": "R",
        "lastTransitionTime": "2024-05-01T12:00:00+02:00",
    }
    assert Condition.from_dict(wire).last_transition_time == T0


def test_wire_form_without_a_status_is_refused() -> None:
    with pytest.raises(ValueError, match="read condition"):
        Condition.from_dict({"type": "Ready", "reason": "R"})


def test_absent_status_conditions_read_as_none() -> None:
    assert conditions_from(None) == ()


def test_status_fields_carry_generation_conditions_and_phase() -> None:
    conditions = set_condition((), ready(TRUE), T0)
    fields = status_fields(4, conditions)
    assert (fields["observedGeneration"], fields["phase"], len(fields["conditions"])) == (4, "Ready", 1)
