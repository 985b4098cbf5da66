"""BackupPlan: cron schedules checked for real, time zones, windows, and which tables it selects."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from tablekeeper.resources import BackupPlanSpec, BackupPlanStatus
from tablekeeper.resources.plan import CRON_PATTERN, RuleStatus
from tests.resources.support import EXAMPLES, load_yaml

RULE = {"name": "daily", "schedule": "0 3 * * *", "targetVaultRef": {"name": "primary"}}


def plan(*rules: dict[str, Any], **fields: Any) -> BackupPlanSpec:
    selection = {"tableNames": ["orders"]}
    return BackupPlanSpec.model_validate({"rules": list(rules or [RULE]), "selection": selection, **fields})


def refusal(*rules: dict[str, Any], **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        plan(*rules, **fields)
    return str(caught.value)


def test_rule_defaults_follow_aws_backup() -> None:
    [rule] = plan().rules
    assert (rule.time_zone, rule.start_window_minutes, rule.completion_window_minutes) == ("UTC", 60, 10080)
    assert rule.lifecycle is None and rule.keep_last is None


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("61 * * * *", "is not a valid cron expression"),
        ("0 3 * * * *", "a cron schedule has 5 fields (minute hour day-of-month month day-of-week), not 6"),
        ("0 3 * *", "not 4"),
        ("0 3 31 FOO *", "is not a valid cron expression"),
        ("every day", "not 2"),
    ],
)
def test_a_bad_cron_schedule_is_refused_saying_why(schedule: str, words: str) -> None:
    message = refusal({**RULE, "schedule": schedule})
    assert f"schedule {schedule!r}" in message and words in message


@pytest.mark.parametrize(
    "schedule", ["*/15 * * * *", "0 0-6/2 1,15 JAN-MAR MON-FRI", "30 4 * * SUN", "0 3 * * 0"]
)
def test_standard_cron_is_accepted_by_the_model_and_the_schema_pattern(schedule: str) -> None:
    assert plan({**RULE, "schedule": schedule}).rules[0].schedule == schedule
    assert re.search(CRON_PATTERN, schedule)


def test_an_unknown_time_zone_is_refused() -> None:
    assert "timeZone 'Mars/Olympus' is not an IANA time zone name" in refusal(
        {**RULE, "timeZone": "Mars/Olympus"}
    )
    assert plan({**RULE, "timeZone": "Europe/Berlin"}).rules[0].time_zone == "Europe/Berlin"


def test_a_start_window_under_60_minutes_is_refused() -> None:
    assert "startWindowMinutes" in refusal({**RULE, "startWindowMinutes": 59})


def test_two_rules_with_one_name_are_refused() -> None:
    assert "rules: duplicate name 'daily'" in refusal(RULE, {**RULE, "schedule": "0 4 * * *"})


def test_a_plan_needs_at_least_one_rule() -> None:
    with pytest.raises(ValidationError, match="rules"):
        BackupPlanSpec.model_validate({"rules": [], "selection": {"tableNames": ["orders"]}})


def test_selection_needs_table_names_or_a_label_selector() -> None:
    with pytest.raises(ValidationError, match="selection needs tableNames or a labelSelector"):
        BackupPlanSpec.model_validate({"rules": [RULE], "selection": {}})


def test_selection_takes_named_tables_and_tables_the_selector_matches() -> None:
    selection = BackupPlanSpec.model_validate(load_yaml(EXAMPLES / "backupplan.yaml")["spec"]).selection
    assert selection.selects("orders", {})
    assert selection.selects("carts", {"backup.shop.example/tier": "critical"})
    assert not selection.selects("carts", {"backup.shop.example/tier": "bulk"})


def test_rule_status_is_found_by_name() -> None:
    status = BackupPlanStatus(rules=(RuleStatus(name="daily"), RuleStatus(name="weekly")))
    assert status.rule("weekly") == RuleStatus(name="weekly")
    assert status.rule("hourly") is None
