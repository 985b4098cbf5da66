"""The manifests in examples/: one per kind, valid against its CRD, and read by the models unchanged."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tablekeeper.resources import kinds
from tablekeeper.resources.common import API_VERSION, ResourceKind
from tablekeeper.resources.kinds import KINDS
from tests.resources.support import EXAMPLES, closed, crd_on_disk, load_yaml, root_schema

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
BY_FILE = pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])


def _kind_of(example: dict[str, Any]) -> ResourceKind:
    return kinds.kind_named(example["kind"])


def _schema_errors(example: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(closed(root_schema(crd_on_disk(_kind_of(example)))))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]


def test_every_kind_has_an_example() -> None:
    shown = {load_yaml(path)["kind"] for path in EXAMPLE_FILES}
    assert shown == {kind.kind for kind in KINDS}


@BY_FILE
def test_example_validates_against_its_crd_schema(path: Path) -> None:
    example = load_yaml(path)
    assert example["apiVersion"] == API_VERSION
    assert _schema_errors(example) == []


@BY_FILE
def test_example_round_trips_through_its_model(path: Path) -> None:
    example = load_yaml(path)
    model = kinds.parse(example)
    assert model.model_dump(mode="json", exclude_unset=True) == example


@BY_FILE
def test_example_dumped_with_defaults_still_validates(path: Path) -> None:
    # What the operator writes back (defaults filled in) must be acceptable to the API server.
    wire = kinds.parse(load_yaml(path)).to_wire()
    assert _schema_errors(wire) == []


def test_schema_refuses_a_misspelled_field() -> None:
    table = load_yaml(EXAMPLES / "table.yaml")
    table["spec"]["billingmode"] = "PROVISIONED"
    assert any("billingmode" in error for error in _schema_errors(table))


@pytest.mark.parametrize("days", [0, 36])
def test_schema_refuses_a_recovery_period_outside_1_to_35_days(days: int) -> None:
    pitr = load_yaml(EXAMPLES / "pitrconfig.yaml")
    pitr["spec"]["recoveryPeriodInDays"] = days
    assert any("recoveryPeriodInDays" in error for error in _schema_errors(pitr))


@pytest.mark.parametrize("schedule", ["0 3 * *", "every day", "0 3 * * * *", "@daily"])
def test_schema_refuses_a_schedule_that_is_not_five_cron_fields(schedule: str) -> None:
    plan = load_yaml(EXAMPLES / "backupplan.yaml")
    plan["spec"]["rules"][0]["schedule"] = schedule
    assert any("schedule" in error for error in _schema_errors(plan))


@pytest.mark.parametrize("schedule", ["*/15 * * * *", "0 0-6/2 1,15 JAN-MAR MON-FRI", "5 4 * * sun"])
def test_schema_accepts_standard_cron_with_ranges_steps_lists_and_names(schedule: str) -> None:
    plan = load_yaml(EXAMPLES / "backupplan.yaml")
    plan["spec"]["rules"][0]["schedule"] = schedule
    assert _schema_errors(plan) == []


def test_schema_refuses_21_global_secondary_indexes() -> None:
    table = load_yaml(EXAMPLES / "table.yaml")
    gsi = table["spec"]["globalSecondaryIndexes"][0]
    table["spec"]["globalSecondaryIndexes"] = [
        {**copy.deepcopy(gsi), "indexName": f"gsi{i}"} for i in range(21)
    ]
    assert any("globalSecondaryIndexes" in error for error in _schema_errors(table))


@pytest.mark.parametrize("name", ["ab", "orders table", "x" * 256, "Ordérs"])
def test_schema_refuses_a_bad_table_name(name: str) -> None:
    table = load_yaml(EXAMPLES / "table.yaml")
    table["spec"]["tableName"] = name
    assert any("tableName" in error for error in _schema_errors(table))


@pytest.mark.parametrize("url", ["http://bucket/x", "s3://", "file://relative/path", "s3://B/x"])
def test_schema_refuses_a_vault_url_that_is_neither_a_folder_nor_a_bucket(url: str) -> None:
    vault = load_yaml(EXAMPLES / "backupvault.yaml")
    vault["spec"]["url"] = url
    assert any("url" in error for error in _schema_errors(vault))


def test_schema_accepts_a_quantity_as_a_string_or_an_integer() -> None:
    table = load_yaml(EXAMPLES / "table.yaml")
    table["spec"]["resources"]["limits"]["cpu"] = 2
    assert _schema_errors(table) == []
    table["spec"]["storage"]["size"] = "20 gigabytes"
    assert any("size" in error for error in _schema_errors(table))
