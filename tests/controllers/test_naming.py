"""Deterministic child names and labels for the Backups a plan creates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tablekeeper.controllers.naming import (
    MAX_NAME,
    PLAN_LABEL,
    RULE_LABEL,
    TABLE_LABEL,
    child_labels,
    child_name,
    is_dns_label,
    label_value,
    run_now_child_name,
)

WHEN = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_child_name_is_plan_rule_and_utc_minute() -> None:
    assert child_name("nightly", "daily", WHEN) == "nightly-daily-202403310100"


def test_child_name_includes_the_table_when_given() -> None:
    assert child_name("nightly", "daily", WHEN, table="orders") == "nightly-daily-orders-202403310100"


def test_child_name_uses_utc_whatever_the_input_zone() -> None:
    berlin_time = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert child_name("nightly", "daily", berlin_time) == "nightly-daily-202403310100"


def test_child_name_is_the_same_on_every_call() -> None:
    assert child_name("p", "r", WHEN) == child_name("p", "r", WHEN)


def test_child_name_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        child_name("p", "r", datetime(2024, 1, 1))


def test_long_names_are_truncated_with_a_stable_hash_and_keep_the_timestamp() -> None:
    name = child_name("p" * 200, "r" * 60, WHEN, table="t" * 100)
    assert len(name) <= MAX_NAME and is_dns_label(name)
    assert name.endswith("-202403310100") and name == child_name("p" * 200, "r" * 60, WHEN, table="t" * 100)


def test_names_differing_only_past_the_cut_stay_apart() -> None:
    assert child_name("p" * 80 + "a", "r", WHEN) != child_name("p" * 80 + "b", "r", WHEN)


def test_rule_names_that_need_cleaning_get_a_hash_so_they_do_not_collide() -> None:
    cleaned, plain = child_name("plan", "Daily_Rule", WHEN), child_name("plan", "daily-rule", WHEN)
    assert is_dns_label(cleaned) and cleaned != plain and cleaned.startswith("plan-daily-rule-")


def test_dotted_plan_name_becomes_a_valid_label_name() -> None:
    assert is_dns_label(child_name("team.nightly", "daily", WHEN))


def test_run_now_name_depends_on_the_token_only() -> None:
    first = run_now_child_name("nightly", "daily", "2024-06-01T10:00")
    assert first == run_now_child_name("nightly", "daily", "2024-06-01T10:00")
    assert first != run_now_child_name("nightly", "daily", "2024-06-01T10:05")
    assert first.startswith("nightly-daily-now-") and is_dns_label(first)


def test_child_labels_name_plan_rule_and_table_only() -> None:
    assert child_labels("nightly", "daily", "orders") == {
        "app.kubernetes.io/managed-by": "tablekeeper",
        PLAN_LABEL: "nightly",
        RULE_LABEL: "daily",
        TABLE_LABEL: "orders",
    }


def test_child_labels_omit_the_table_when_none() -> None:
    assert TABLE_LABEL not in child_labels("nightly", "daily")


def test_long_plan_name_becomes_a_valid_label_value() -> None:
    value = child_labels("x" * 200, "daily")[PLAN_LABEL]
    assert len(value) <= MAX_NAME and LABEL_VALUE.match(value)


def test_valid_label_value_is_kept_as_is() -> None:
    assert label_value("Daily_Rule.v2") == "Daily_Rule.v2"


_NAME_TEXT = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=300)


@given(
    plan=_NAME_TEXT, rule=_NAME_TEXT, table=st.none() | _NAME_TEXT, minutes=st.integers(0, 60 * 24 * 365 * 50)
)
def test_child_names_are_always_valid_dns_labels(
    plan: str, rule: str, table: str | None, minutes: int
) -> None:
    when = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    assert is_dns_label(child_name(plan, rule, when, table=table))
    assert is_dns_label(run_now_child_name(plan, rule, str(minutes), table=table))


@given(text=_NAME_TEXT)
def test_label_values_are_always_valid(text: str) -> None:
    value = label_value(text)
    assert len(value) <= MAX_NAME and LABEL_VALUE.match(value)
