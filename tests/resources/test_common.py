"""What every kind shares: conditions, label selectors, parsing by kind, the wire form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tablekeeper.resources import (
    Condition,
    ConditionStatus,
    ConditionType,
    LabelSelector,
    Table,
    TableStatus,
    kind_named,
    parse,
)
from tablekeeper.resources.common import LabelSelectorRequirement

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 2, tzinfo=UTC)


def ready(status: ConditionStatus, at: datetime, reason: str = "EngineReady") -> Condition:
    return Condition(type=ConditionType.READY, status=status, reason=reason, last_transition_time=at)


def test_setting_a_condition_with_the_same_status_keeps_its_transition_time() -> None:
    status = TableStatus().with_condition(ready(ConditionStatus.TRUE, T0))
    again = status.with_condition(ready(ConditionStatus.TRUE, T1, reason="StillReady"))
    found = again.condition("Ready")
    assert found is not None and found.last_transition_time == T0 and found.reason == "StillReady"
    assert len(again.conditions) == 1


def test_setting_a_condition_with_another_status_moves_its_transition_time() -> None:
    status = TableStatus().with_condition(ready(ConditionStatus.TRUE, T0))
    changed = status.with_condition(ready(ConditionStatus.FALSE, T1, reason="EngineDown"))
    assert changed.condition("Ready") == ready(ConditionStatus.FALSE, T1, reason="EngineDown")
    assert not changed.is_true("Ready") and status.is_true("Ready")


def test_a_condition_reason_must_be_one_camel_case_word() -> None:
    with pytest.raises(ValidationError, match="reason"):
        ready(ConditionStatus.TRUE, T0, reason="engine is ready")


def test_a_status_from_a_newer_operator_with_unknown_fields_is_still_read() -> None:
    status = TableStatus.model_validate({"phase": "Active", "replicaLag": 3})
    assert status.phase == "Active"


def test_conditions_serialize_as_kubernetes_writes_them() -> None:
    status = TableStatus(observed_generation=2).with_condition(ready(ConditionStatus.TRUE, T0))
    assert status.model_dump(mode="json", exclude_none=True) == {
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "True", "reason": "EngineReady", "message": "",
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }  # fmt: skip


def test_label_selector_needs_every_label_and_every_expression() -> None:
    selector = LabelSelector.model_validate(
        {"matchLabels": {"tier": "critical"},
         "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]},
                              {"key": "legacy", "operator": "DoesNotExist"}]}
    )  # fmt: skip
    assert selector.matches({"tier": "critical", "env": "prod"})
    assert not selector.matches({"tier": "critical", "env": "dev"})
    assert not selector.matches({"tier": "critical", "env": "prod", "legacy": "yes"})
    assert not selector.matches({"env": "prod"})


def test_an_empty_label_selector_selects_everything() -> None:
    assert LabelSelector().matches({}) and LabelSelector().matches({"a": "b"})


@pytest.mark.parametrize(("operator", "values"), [("In", None), ("NotIn", []), ("Exists", ["x"])])
def test_selector_values_must_fit_the_operator(operator: str, values: list[str] | None) -> None:
    with pytest.raises(ValidationError, match="values must be non-empty for In and NotIn"):
        LabelSelectorRequirement.model_validate({"key": "k", "operator": operator, "values": values})


def test_parse_picks_the_model_by_kind() -> None:
    obj = {"apiVersion": "tablekeeper.io/v1alpha1", "kind": "Table", "metadata": {"name": "orders"},
           "spec": {"keySchema": {"partitionKey": {"name": "pk", "type": "S"}}}}  # fmt: skip
    assert isinstance(parse(obj), Table)


def test_parse_refuses_another_api_version_or_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"apiVersion 'tablekeeper\.io/v1' is not tablekeeper\.io/v1alpha1"):
        parse({"apiVersion": "tablekeeper.io/v1", "kind": "Table"})
    with pytest.raises(KeyError, match="unknown kind 'GlobalTable'"):
        kind_named("GlobalTable")


def test_metadata_fields_the_operator_does_not_model_are_kept() -> None:
    obj = {"apiVersion": "tablekeeper.io/v1alpha1", "kind": "Table",
           "metadata": {"name": "orders", "resourceVersion": "42", "finalizers": ["tablekeeper.io/table"]},
           "spec": {"keySchema": {"partitionKey": {"name": "pk", "type": "S"}}}}  # fmt: skip
    wire = parse(obj).to_wire()
    assert wire["metadata"] == obj["metadata"]
    assert wire["spec"]["billingMode"] == "PAY_PER_REQUEST"
