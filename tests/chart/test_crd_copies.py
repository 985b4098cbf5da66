"""The chart's CRD copies match crds/, and survive the YAML parser Kubernetes tools use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.support import CHART, ROOT, GoYamlLoader

SOURCE = ROOT / "crds"
COPIES = CHART / "files" / "crds"


def _yaml_files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.yaml"))}


def test_chart_crds_are_copies_of_the_generated_crds() -> None:
    source, copies = _yaml_files(SOURCE), _yaml_files(COPIES)
    assert source, "crds/ is empty: run hack/gen-crds"
    stale = sorted(name for name in source.keys() | copies.keys() if source.get(name) != copies.get(name))
    assert not stale, f"the chart's copies of {stale} differ from crds/: run hack/sync-chart-crds"


def _differences(python: Any, go: Any, path: str = "") -> list[str]:
    if isinstance(python, dict) and isinstance(go, dict):
        return [d for key in python for d in _differences(python[key], go.get(key), f"{path}.{key}")]
    if isinstance(python, list) and isinstance(go, list):
        pairs = enumerate(zip(python, go, strict=True))
        return [d for i, (a, b) in pairs for d in _differences(a, b, f"{path}[{i}]")]
    return [] if python == go and type(python) is type(go) else [f"{path}: {python!r} reads as {go!r}"]


@pytest.mark.parametrize("name", sorted(_yaml_files(SOURCE)))
def test_crd_reads_the_same_in_go_yaml(name: str) -> None:
    """A plain ``N`` in an enum is the string N to PyYAML and false to kubectl and Helm: quote it."""
    text = (SOURCE / name).read_text()
    found = _differences(yaml.safe_load(text), yaml.load(text, Loader=GoYamlLoader))
    assert not found, (
        f"crds/{name}: {found[:3]}: quote these scalars in the CRD generator "
        "(tablekeeper.resources.crds), then run hack/gen-crds and hack/sync-chart-crds"
    )


def test_go_yaml_reading_takes_plain_y_and_n_for_booleans_and_quoted_ones_for_strings() -> None:
    text = "enum: [S, N, B, y, Y, 'N', \"n\"]"
    assert yaml.safe_load(text)["enum"] == ["S", "N", "B", "y", "Y", "N", "n"]
    assert yaml.load(text, Loader=GoYamlLoader)["enum"] == ["S", False, "B", True, True, "N", "n"]
