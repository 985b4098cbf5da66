"""What every custom resource shares: the model base, references, conditions, the kind descriptor.

Field names are snake_case in Python and camelCase on the wire (the alias
generator); attribute docstrings become the schema's descriptions, which is
what ``kubectl explain`` shows, so every field has one.

Two places enforce a rule: the CRD's schema (patterns, bounds, enums, CEL
``x-kubernetes-validations``) refuses bad objects at admission, and the
pydantic validators mirror it so the operator (and tests) refuse the same
objects with the same words.  Rules that need more than one object, or more
than CEL's cost budget allows, live only on the pydantic side; each kind's
module says which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "tablekeeper.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "tablekeeper"

# Labels the operator puts on the Backups a BackupPlan makes: the plan and its rule.
PLAN_LABEL = f"{GROUP}/backup-plan"
PLAN_RULE_LABEL = f"{GROUP}/backup-plan-rule"

Rule = dict[str, str]
"""One ``x-kubernetes-validations`` entry: a CEL ``rule`` and the ``message`` shown when it fails."""


def cel(rule: str, message: str) -> Rule:
    """A CEL validation rule with the message the API server returns when it does not hold."""
    return {"rule": rule, "message": message}


def validations(*rules: Rule) -> dict[str, Any]:
    """``json_schema_extra`` attaching CEL rules to a field or a model."""
    return {"x-kubernetes-validations": list(rules)}


def list_map(*keys: str) -> dict[str, Any]:
    """``json_schema_extra`` making a list a map keyed by ``keys`` (server-side apply merges by key)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
"""``json_schema_extra`` for a list of distinct scalars."""


def immutable(what: str) -> dict[str, Any]:
    """``json_schema_extra`` refusing any change of a field once the object exists."""
    return validations(cel("self == oldSelf", f"{what} is immutable"))


class Model(BaseModel):
    """Base of every spec model: camelCase on the wire, frozen, unknown fields refused.

    Refusing unknown fields matters beyond typos: an operator older than
    the CRD must not act on a spec it only partly understands.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        frozen=True,
        extra="forbid",
    )

    IMMUTABLE: ClassVar[tuple[str, ...]] = ()
    """Dotted Python paths of the fields the CRD's transition rules (``self == oldSelf``) freeze."""

    def refused_changes(self, old: Self) -> list[str]:
        """What the API server refuses in an update from ``old`` to this, as its messages say it.

        The operator's side of the CEL transition rules: a controller sees the
        old and the new spec, so it can refuse (rather than act on) a change
        that reached it without admission, e.g. where the CRD is older.
        """
        refused = []
        for path in self.IMMUTABLE:
            if _lookup(self, path) != _lookup(old, path):
                refused.append(f"{to_camel(path.rsplit('.', 1)[-1])} is immutable")  # as the CEL message
        return refused


def _lookup(model: BaseModel, path: str) -> Any:
    value: Any = model
    for step in path.split("."):
        value = getattr(value, step, None)
    return value


class StatusModel(Model):
    """Base of status models: unknown fields ignored, so any operator version can read any status."""

    model_config = ConfigDict(extra="ignore")


def _unique(values: Sequence[str]) -> Sequence[str]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"duplicate entries: {', '.join(duplicates)}")
    return values


def unique_by(items: Iterable[Any], key: str, where: str) -> None:
    """Refuse two items of a list-map with the same key (the API server does so for list-maps)."""
    seen: set[str] = set()
    for item in items:
        value = getattr(item, key)
        if value in seen:
            raise ValueError(f"{where}: duplicate {to_camel(key)} {value!r}")
        seen.add(value)


DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""The name of a Kubernetes object (a DNS subdomain)."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A DNS label: usable in labels and in the names of the objects made from it."""

SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
"""A key inside a Secret's data."""

UniqueStrings = AfterValidator(_unique)
"""Refuses duplicates in a list of strings (the API server does so for list-type set)."""


class LocalObjectReference(Model):
    """A reference to another object of the expected kind in the same namespace."""

    name: ObjectName
    """Name of the referenced object."""


QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi, 10G)")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    # Kubernetes' own spelling of resource.Quantity in CRDs (as controller-gen writes it).
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity: an integer or a string such as ``500m`` or ``10Gi``."""


class LabelSelectorOperator(StrEnum):
    """How a selector requirement relates a label's value to its values."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(Model):
    """One requirement of a label selector: key, operator and values."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                "values must be non-empty for In and NotIn and empty for Exists and DoesNotExist",
            )
        )
    )

    key: str = Field(min_length=1, max_length=317)
    """The label key the requirement applies to."""
    operator: LabelSelectorOperator
    """In, NotIn, Exists or DoesNotExist."""
    values: tuple[Annotated[str, Field(max_length=63)], ...] | None = Field(default=None, max_length=100)
    """The values for In and NotIn; empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        wants_values = self.operator in (LabelSelectorOperator.IN, LabelSelectorOperator.NOT_IN)
        if wants_values != bool(self.values):
            raise ValueError(
                "values must be non-empty for In and NotIn and empty for Exists and DoesNotExist"
            )
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with ``labels`` meets this requirement."""
        present = self.key in labels
        if self.operator is LabelSelectorOperator.EXISTS:
            return present
        if self.operator is LabelSelectorOperator.DOES_NOT_EXIST:
            return not present
        inside = present and labels[self.key] in (self.values or ())
        return inside if self.operator is LabelSelectorOperator.IN else not inside


class LabelSelector(Model):
    """A standard Kubernetes label selector: every matchLabels entry and every expression must hold."""

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(default=None, max_length=64)
    """Labels an object must carry with exactly these values."""
    match_expressions: tuple[LabelSelectorRequirement, ...] | None = Field(default=None, max_length=32)
    """Requirements an object's labels must meet."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with ``labels`` is selected (an empty selector selects everything)."""
        if any(labels.get(key) != value for key, value in (self.match_labels or {}).items()):
            return False
        return all(requirement.matches(labels) for requirement in self.match_expressions or ())


class ConditionType(StrEnum):
    """The condition types the operator sets (Kubernetes leaves the type open; these are ours)."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    PITR_READY = "PITRReady"


class ConditionStatus(StrEnum):
    """Whether a condition holds: True, False or Unknown."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of the object's state, as Kubernetes' metav1.Condition spells it."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    """The aspect: Ready, Progressing, Degraded (and PITRReady on a PitrConfig)."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Why the condition last changed, as a CamelCase word (e.g. EngineStarting, VaultUnreachable)."""
    message: str = Field(default="", max_length=32768)
    """What happened, for a person."""
    last_transition_time: AwareDatetime
    """When the status last changed (not merely when the condition was last written)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation of the spec this condition was computed from."""


class Status(StatusModel):
    """What every status has: the generation seen, the conditions, and a short phase."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the operator last acted on."""
    conditions: tuple[Condition, ...] = Field(default=(), json_schema_extra=list_map("type"))
    """The object's conditions: Ready, Progressing, Degraded (by type, one each)."""

    def condition(self, type_: str) -> Condition | None:
        """The condition of ``type_``, or None when it was never set."""
        return next((c for c in self.conditions if c.type == type_), None)

    def is_true(self, type_: str) -> bool:
        """Whether the condition of ``type_`` is set and True."""
        found = self.condition(type_)
        return found is not None and found.status is ConditionStatus.TRUE

    def with_condition(self, new: Condition) -> Self:
        """A copy with ``new`` in place of the condition of its type.

        Keeps the old lastTransitionTime when the status did not change, as
        Kubernetes' SetStatusCondition does: it says since when, not last written.
        """
        old = self.condition(new.type)
        if old is not None and old.status == new.status:
            new = new.model_copy(update={"last_transition_time": old.last_transition_time})
        others = tuple(c for c in self.conditions if c.type != new.type)
        return self.model_copy(update={"conditions": (*others, new)})


class ObjectMeta(BaseModel):
    """The part of an object's metadata the operator reads; everything else is kept as is."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="allow",
    )

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    uid: str | None = None


class Resource(Model):
    """A whole custom resource: apiVersion, kind, metadata, spec and status."""

    api_version: Literal["tablekeeper.io/v1alpha1"] = API_VERSION
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: Model
    status: Status | None = None

    def refused_changes(self, old: Self) -> list[str]:
        """The spec's refused changes (see ``Model.refused_changes``)."""
        return self.spec.refused_changes(old.spec)

    def to_wire(self) -> dict[str, Any]:
        """The object as the Kubernetes API takes it: camelCase, JSON types, unset optionals left out."""
        return self.model_dump(mode="json", exclude_none=True)


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"


@dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get``; priority 1 shows only with ``-o wide``."""

    name: str
    json_path: str
    type: ColumnType = ColumnType.STRING
    description: str = ""
    priority: int = 0


PHASE_COLUMN = PrinterColumn("Phase", ".status.phase", description="The short state of the object")
READY_COLUMN = PrinterColumn(
    "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Whether the Ready condition holds"
)
AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", ColumnType.DATE)


@dataclass(frozen=True)
class ResourceKind:
    """Everything the CRD of one kind needs besides its models.

    ``columns`` come between Phase/Ready and Age; ``root_rules`` are CEL rules
    on the whole object, for checks that need metadata (e.g. the name).
    """

    model: type[Resource]
    spec: type[Model]
    status: type[Status]
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...] = ()
    root_rules: tuple[Rule, ...] = ()

    @property
    def kind(self) -> str:
        return self.model.model_fields["kind"].default  # type: ignore[no-any-return]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def printer_columns(self) -> tuple[PrinterColumn, ...]:
        return (PHASE_COLUMN, READY_COLUMN, *self.columns, AGE_COLUMN)
