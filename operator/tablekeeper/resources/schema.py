"""A pydantic model's JSON schema, made a Kubernetes structural schema.

Kubernetes wants every node typed and self-contained: no ``$ref``, no
``anyOf`` except its own int-or-string, no ``additionalProperties: false``,
no draft-2020 keywords it does not know.  ``structural`` inlines references,
folds ``Optional`` (``anyOf [X, null]``) into X (unset fields are left out
on the wire, never null), keeps scalar defaults (the API server applies
them), merges field-level and model-level ``x-kubernetes-validations``, and
refuses anything else it does not recognise rather than emit a schema the
API server would reject.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]


class SchemaError(ValueError):
    """A model's schema has no structural equivalent; the message names the node."""


# Keywords copied as they are (besides the ones handled below).
_KEPT = frozenset(
    {
        "description", "type", "format", "enum", "pattern", "required",
        "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
        "minProperties", "maxProperties", "multipleOf",
        "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
        "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-map-type",
    }
)  # fmt: skip
# Keywords with no meaning for the API server: a title, and map-key constraints
# (which Kubernetes cannot express; models state them as CEL rules instead).
_DROPPED = frozenset({"title", "propertyNames"})
_STRING_ONLY = {"pattern", "minLength", "maxLength", "format"}
_ARRAY_ONLY = {"minItems", "maxItems", "items", "x-kubernetes-list-type", "x-kubernetes-list-map-keys"}
_NUMBER_ONLY = {"minimum", "maximum", "multipleOf"}
_OBJECT_ONLY = {"properties", "additionalProperties", "required", "minProperties", "maxProperties"}
# Keywords a node of each type must not carry (pydantic puts a constraint on the wrong node when
# it is given on an Optional field: say so rather than emit a schema that checks nothing).
_ONLY_FOR = {
    "string": _ARRAY_ONLY | _NUMBER_ONLY | _OBJECT_ONLY,
    "array": _STRING_ONLY | _NUMBER_ONLY | _OBJECT_ONLY,
    "object": _STRING_ONLY | _ARRAY_ONLY | _NUMBER_ONLY,
    "integer": _STRING_ONLY | _ARRAY_ONLY | _OBJECT_ONLY,
    "number": _STRING_ONLY | _ARRAY_ONLY | _OBJECT_ONLY,
    "boolean": _STRING_ONLY | _ARRAY_ONLY | _NUMBER_ONLY | _OBJECT_ONLY,
}
_FORMATS = frozenset({"date-time", "date", "int32", "int64", "float", "double", "byte"})

# The order keys are written in, so that generated YAML reads top-down and never churns.
_ORDER = (
    "description", "type", "format", "enum", "default", "pattern", "minimum", "maximum",
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf",
    "anyOf", "x-kubernetes-int-or-string", "required", "properties", "additionalProperties", "items",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
)  # fmt: skip
_RANK = {key: rank for rank, key in enumerate(_ORDER)}


def structural(model: type[BaseModel]) -> Schema:
    """The structural schema of ``model``'s wire form (camelCase, validation mode)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    return _convert(raw, definitions, model.__name__)


def _merge(base: Schema, override: Schema) -> Schema:
    """``base`` with ``override``'s keys; CEL rules of both are kept, the base's first."""
    merged = {**base, **override}
    rules = [*base.get("x-kubernetes-validations", ()), *override.get("x-kubernetes-validations", ())]
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def _resolve(node: Schema, definitions: Schema, path: str) -> Schema:
    """``node`` with references inlined and Optional folded, until neither is left."""
    while True:
        rest = {k: v for k, v in node.items() if k not in ("$ref", "allOf", "anyOf")}
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = _merge(definitions[name], rest)
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = _merge(node["allOf"][0], rest)
        elif "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            branches = [b for b in node["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1 or len(branches) == len(node["anyOf"]):
                raise SchemaError(f"{path}: a union other than X | None has no structural schema")
            node = _merge(branches[0], rest)
        else:
            return node


def _convert(node: Schema, definitions: Schema, path: str) -> Schema:
    node = _resolve(node, definitions, path)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "default":
            # Scalars only: a null means "unset", and object or list defaults would
            # have the API server write whole structures into every object.
            if isinstance(value, str | int | float | bool):
                out[key] = value
        elif key == "properties":
            out[key] = {name: _convert(sub, definitions, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, definitions, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, definitions, f"{path}{{}}")
            # False (extra="forbid") is the API server's pruning already; Kubernetes refuses it.
        elif key == "anyOf":
            out[key] = value  # int-or-string only: _resolve folded every other union
        elif key == "format":
            if value not in _FORMATS:
                raise SchemaError(f"{path}: format {value!r} is not one Kubernetes knows")
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "description":
            out[key] = " ".join(value.split())  # docstrings wrap; kubectl explain re-wraps
        elif key == "x-kubernetes-validations":
            out[key] = [{"rule": r["rule"], "message": r["message"]} for r in value]
        elif key in _KEPT:
            out[key] = value
        else:
            raise SchemaError(f"{path}: {key!r} has no structural equivalent")
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"{path}: a structural schema types every node")
    if "properties" in out and "additionalProperties" in out:
        raise SchemaError(f"{path}: properties and additionalProperties exclude each other")
    misplaced = sorted(set(out) & _ONLY_FOR.get(out.get("type", ""), set()))
    if misplaced:
        raise SchemaError(f"{path}: {', '.join(misplaced)} do not apply to type {out['type']}")
    return {key: out[key] for key in sorted(out, key=lambda k: (_RANK.get(k, len(_RANK)), k))}
