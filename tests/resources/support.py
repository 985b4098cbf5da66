"""Helpers for the custom-resource tests: the files on disk, schema walking, a structural check."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tablekeeper.resources.common import ResourceKind

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"

Schema = dict[str, Any]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def crd_on_disk(kind: ResourceKind) -> dict[str, Any]:
    return load_yaml(CRDS / f"{kind.crd_name}.yaml")


def root_schema(crd: dict[str, Any]) -> Schema:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def node_at(schema: Schema, path: str) -> Schema:
    """The schema node at a dotted path of property names; ``[]`` steps into list items."""
    node = schema
    for step in filter(None, path.split(".")):
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


def rules_at(schema: Schema, path: str) -> list[dict[str, str]]:
    return list(node_at(schema, path).get("x-kubernetes-validations", []))


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path: properties by name, items as [], map values as {}."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


_FORBIDDEN = ("$ref", "definitions", "$defs", "$schema", "id", "allOf", "oneOf", "not", "uniqueItems")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_problems(schema: Schema) -> list[str]:
    """Why ``schema`` is not a Kubernetes structural schema (empty when it is).

    The rules of apiextensions v1 that a generator can break: every node
    typed (but int-or-string and preserve-unknown-fields nodes), no
    references or logical junctors beside int-or-string's anyOf, no
    additionalProperties beside properties or set to false, list-map keys
    required scalars, and metadata at the root saying no more than its type.
    """
    problems = []
    for path, node in walk(schema):
        where = path or "<root>"
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        if "type" not in node and not int_or_string and not node.get("x-kubernetes-preserve-unknown-fields"):
            problems.append(f"{where}: no type")
        if int_or_string and ("type" in node or node.get("anyOf", _INT_OR_STRING) != _INT_OR_STRING):
            problems.append(f"{where}: int-or-string must be untyped with anyOf [integer, string]")
        if "anyOf" in node and not int_or_string:
            problems.append(f"{where}: anyOf outside int-or-string")
        problems.extend(f"{where}: {key}" for key in _FORBIDDEN if key in node)
        if node.get("additionalProperties") is False or (
            "additionalProperties" in node and "properties" in node
        ):
            problems.append(f"{where}: additionalProperties false or beside properties")
        if node.get("x-kubernetes-list-type") == "map":
            problems.extend(_list_map_problems(where, node))
    metadata = schema.get("properties", {}).get("metadata", {})
    if set(metadata) - {"type"}:
        problems.append(".metadata: a CRD may only say metadata is an object")
    return problems


def _list_map_problems(where: str, node: Schema) -> list[str]:
    items = node.get("items", {})
    problems = []
    for key in node.get("x-kubernetes-list-map-keys", []):
        prop = items.get("properties", {}).get(key)
        if prop is None or prop.get("type") not in ("string", "integer", "boolean"):
            problems.append(f"{where}: list-map key {key} is not a scalar property")
        elif key not in items.get("required", []) and "default" not in prop:
            problems.append(f"{where}: list-map key {key} is neither required nor defaulted")
    return problems


def closed(schema: Schema) -> Schema:
    """A copy refusing unknown fields (as the API server's pruning would drop them), to catch typos."""
    schema = copy.deepcopy(schema)
    for _, node in walk(schema):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    return schema


_REFERENCE = re.compile(r"\b(?:self|oldSelf)((?:\.[A-Za-z_]\w*)+)(\()?")


def cel_field_paths(rule: str) -> list[list[str]]:
    """The property paths a CEL rule reads from self/oldSelf (a trailing method call left out)."""
    paths = []
    for match in _REFERENCE.finditer(rule):
        steps = match.group(1).lstrip(".").split(".")
        paths.append(steps[:-1] if match.group(2) else steps)
    return paths
