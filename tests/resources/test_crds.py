"""The CRDs in crds/: generated from the models, valid, structural, and well described."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from tablekeeper.resources.common import CATEGORY, GROUP, VERSION, ResourceKind
from tablekeeper.resources.crds import crd, differences, file_name, generate, write
from tablekeeper.resources.kinds import KINDS
from tests.resources.support import CRDS, crd_on_disk, root_schema, structural_problems, walk

KUBERNETES_VERSION = "1.30.0"
BY_KIND = pytest.mark.parametrize("kind", KINDS, ids=[k.kind for k in KINDS])


def test_crds_in_the_repository_are_what_the_models_generate() -> None:
    stale = differences(CRDS)
    assert not stale, (
        f"crds/ is out of date with operator/tablekeeper/resources ({', '.join(stale)}):"
        " run hack/gen-crds and commit the result"
    )


def test_generating_twice_gives_identical_text() -> None:
    assert generate() == generate()


def test_there_is_one_crd_file_per_kind() -> None:
    assert sorted(generate()) == sorted(f"{k.plural}.{GROUP}.yaml" for k in KINDS)
    assert len({file_name(k) for k in KINDS}) == len(KINDS)


@BY_KIND
def test_crd_is_a_valid_apiextensions_v1_custom_resource_definition(kind: ResourceKind) -> None:
    kubernetes_validate.validate(crd_on_disk(kind), KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_broken_crd() -> None:
    # Guards the test above against validating nothing.
    broken = crd(KINDS[0])
    broken["spec"]["scope"] = ["Namespaced"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@BY_KIND
def test_crd_schema_is_structural(kind: ResourceKind) -> None:
    assert structural_problems(root_schema(crd_on_disk(kind))) == []


def test_structural_check_finds_untyped_nodes_refs_and_unions() -> None:
    schema = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "a": {"description": "untyped"},
            "b": {"$ref": "#/$defs/B", "type": "object"},
            "c": {"type": "string", "anyOf": [{"type": "string"}, {"type": "null"}]},
            "d": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    }
    problems = "\n".join(structural_problems(schema))
    for expected in (".a: no type", ".b: $ref", ".c: anyOf", ".d: additionalProperties", ".metadata"):
        assert expected in problems


@BY_KIND
def test_every_field_has_a_description_for_kubectl_explain(kind: ResourceKind) -> None:
    spec_and_status = {
        k: v for k, v in root_schema(crd_on_disk(kind))["properties"].items() if k != "metadata"
    }
    undescribed = [
        f"{name}{path}"
        for name, sub in spec_and_status.items()
        for path, node in walk(sub)
        if not path.endswith("[]") and not path.endswith("{}") and not node.get("description")
    ]
    assert undescribed == []


@BY_KIND
def test_crd_names_group_version_scope_and_subresources(kind: ResourceKind) -> None:
    spec = crd_on_disk(kind)["spec"]
    assert crd_on_disk(kind)["metadata"]["name"] == f"{kind.plural}.{GROUP}"
    assert spec["group"] == GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind.kind and spec["names"]["categories"] == [CATEGORY]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
    assert version["subresources"] == {"status": {}}


@BY_KIND
def test_printer_columns_start_with_phase_and_ready_and_end_with_age(kind: ResourceKind) -> None:
    columns = crd_on_disk(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[0] == {"name": "Phase", "type": "string", "jsonPath": ".status.phase",
                          "description": "The short state of the object"}  # fmt: skip
    assert columns[1]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns[-1] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@BY_KIND
def test_printer_columns_read_fields_that_exist(kind: ResourceKind) -> None:
    schema = root_schema(crd_on_disk(kind))
    for column in crd_on_disk(kind)["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[")[0].strip(".").split(".")
        node = schema
        for step in path:
            if step == "metadata":
                break
            node = node["properties"][step]


def test_short_names_are_distinct_and_prefixed_so_they_do_not_collide() -> None:
    names = [name for kind in KINDS for name in (kind.plural, kind.singular, *kind.short_names)]
    assert len(names) == len(set(names))
    assert all(short.startswith("tk") for kind in KINDS for short in kind.short_names)


def test_status_conditions_are_a_list_map_keyed_by_type() -> None:
    for kind in KINDS:
        conditions = root_schema(crd_on_disk(kind))["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_writing_creates_every_crd_then_changes_nothing_and_removes_stale_ones(tmp_path: Path) -> None:
    assert sorted(write(tmp_path)) == sorted(generate())
    assert write(tmp_path) == []
    (tmp_path / f"globaltables.{GROUP}.yaml").write_text("stale\n")
    (tmp_path / "README.md").write_text("not ours\n")
    assert write(tmp_path) == [f"globaltables.{GROUP}.yaml"]
    assert (tmp_path / "README.md").exists()


def test_gen_crds_check_runs_from_a_checkout_and_finds_crds_up_to_date() -> None:
    script = CRDS.parent / "hack" / "gen-crds"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/usr/bin/env python3\n")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "crds/ is up to date"
